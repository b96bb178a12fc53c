"""`hookyard replay`: re-run handlers on one event or on every event a filter selects.

    hookyard replay --event 01a2...            # all of one event's handlers
    hookyard replay --action 'LOCATION:*' --status dead --since 2026-11-01 --handler crm-sync

`--status` takes an event status (`stored`, `processing`, `processed`,
`failed`) or a delivery status (`pending`, `retrying`, `succeeded`, `dead`):
with a delivery status only deliveries in it are replayed. One event
(`--event`) follows `POST /v1/events/{id}/replay`'s rules (a handler deployed
since is back-filled). A filter is a bulk replay exactly as `POST /v1/replays`
makes one (`service.api.bulk_replays`): `--dry-run` prints its counts, and
otherwise the replay is recorded (visible at `GET /v1/replays/<id>`) and run
here, batch by batch, with the workers' own code; if this command is stopped
midway the workers' sweep finishes it. Bad arguments exit 2 with one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, UsageError, add_parser
from service.cli._progress import Progress

if TYPE_CHECKING:
    from schemas.settings import Settings
    from service.api.bulk_replays import ReplaySelection
    from workers.ops.replay import Replayed
    from workers.shared.connections import Connections

EVENT_STATUSES = ("stored", "processing", "processed", "failed")
DELIVERY_STATUSES = ("pending", "retrying", "succeeded", "dead", "skipped")
"""`schemas.tables.EventStatus.ALL` / `DeliveryStatus.ALL`, spelled out so `--help` needs no SQLAlchemy
(tests/service/cli/test_cli.py checks they agree)."""


def add_command(commands: Subparsers) -> None:
    replay = add_parser(
        commands,
        "replay",
        summary="re-run handlers on stored events",
        description="Give the chosen deliveries a fresh budget of max_attempts and queue them. Either one "
        "event (--event) or every event a filter selects: a bulk replay recorded like POST /v1/replays "
        "(GET /v1/replays/<id> shows it) and run here in batches; if stopped, the workers finish it. "
        "--status takes an event status or a delivery status (then only deliveries in it are replayed). "
        "Progress goes to stderr: a bar on a terminal, a line every few seconds otherwise.",
        examples=[
            "hookyard replay --event 01JD3K6Q8Z7W0000000000000",
            "hookyard replay --action 'LOCATION:*' --status dead --since 2026-11-01 --dry-run",
            "hookyard replay --action 'LOCATION:*' --status dead --since 2026-11-01 --handler crm-sync",
        ],
    )
    replay.add_argument("--event", metavar="ID", help="one event id")
    replay.add_argument("--action", help="LOCATION:CREATED, LOCATION:* or *:DELETED")
    replay.add_argument(
        "--status", choices=(*EVENT_STATUSES, *DELIVERY_STATUSES), help="an event status, or a delivery status"
    )
    replay.add_argument("--since", metavar="TIME", help="ISO 8601: events received at or after it")
    replay.add_argument("--until", metavar="TIME", help="ISO 8601: events received before it")
    replay.add_argument("--source", help="only events from this source")
    replay.add_argument(
        "--handler", action="append", dest="handlers", metavar="NAME", help="only this handler (repeatable)"
    )
    replay.add_argument("--dry-run", action="store_true", help="count what would be replayed, change nothing")
    replay.set_defaults(func=run)


def _describe(result: Replayed) -> str:
    if not result.deliveries:
        return f"{result.event_id}: nothing to replay"
    parts = [
        f"{d.handler} ({d.state}{', new' if d.new else ''}; attempts {d.attempts}, up to {d.max_attempts})"
        for d in result.deliveries
    ]
    return f"{result.event_id}: " + ", ".join(parts)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import redis  # noqa: PLC0415 - commands import the stack when they run (service/cli/__init__.py)
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from schemas.ids import is_event_id  # noqa: PLC0415
    from workers.ops.replay import UnknownHandlers, load_event, queue_replayed, replay_event  # noqa: PLC0415
    from workers.registry import REGISTRY  # noqa: PLC0415
    from workers.shared.connections import Connections  # noqa: PLC0415

    selecting = any(v is not None for v in (args.action, args.status, args.since, args.until, args.source))
    if args.event is None and not selecting:
        raise UsageError("give --event ID, or at least one of --action, --status, --since, --until, --source")
    if args.event is not None and selecting:
        raise UsageError("--event cannot be combined with --action, --status, --since, --until or --source")
    if args.event is not None and not is_event_id(args.event):
        raise UsageError(f"--event {args.event!r} is not an event id")
    selection = None if args.event is not None else _selection(args)
    REGISTRY.load_configured(settings, on_error=lambda exc: print(f"hookyard replay: warning: {exc}", file=sys.stderr))
    connections = Connections(settings)
    default_max = settings.handlers.default_max_attempts
    try:
        if selection is not None:
            return _replay_many(connections, selection, dry_run=args.dry_run, default_max=default_max)
        with Session(connections.engine) as session:
            event = load_event(session, args.event)
            if event is None:
                print(f"hookyard replay: no stored event {args.event}", file=sys.stderr)
                return 1
            result = replay_event(session, event, REGISTRY, default_max, handlers=args.handlers)
            if args.dry_run:
                session.rollback()
            else:
                session.commit()
        if not args.dry_run:
            queue_replayed(connections, [result])
        print(_describe(result))
        return 0
    except UnknownHandlers as exc:
        raise UsageError(exc.detail) from None
    except (redis.RedisError, OSError) as exc:
        print(f"hookyard replay: queued nothing new ({type(exc).__name__}); the worker sweep picks up", file=sys.stderr)
        return 1
    finally:
        connections.close()


def _selection(args: argparse.Namespace) -> ReplaySelection:
    """The filter arguments as `POST /v1/replays` takes them; a bad value is a usage error naming the flag."""
    from schemas.api import ReplayFilter  # noqa: PLC0415
    from schemas.errors import Invalid  # noqa: PLC0415
    from service.api.bulk_replays import ReplaySelection  # noqa: PLC0415

    given = ReplayFilter(
        source=args.source,
        action=args.action,
        status=args.status if args.status in EVENT_STATUSES else None,
        delivery_status=args.status if args.status in DELIVERY_STATUSES else None,
        handlers=args.handlers,
        since=args.since,
        until=args.until,
    )
    try:
        return ReplaySelection.parse(given)
    except Invalid as exc:
        flag = {"HANDLERS": "handler", "DELIVERY_STATUS": "status"}.get(exc.what, exc.what.lower())
        raise UsageError(f"--{flag}: {exc.detail}") from None


def _replay_many(connections: Connections, selection: ReplaySelection, *, dry_run: bool, default_max: int) -> int:
    from service.api.bulk_replays import count_replay, create_replay  # noqa: PLC0415
    from service.request_ids import request_id as new_request_id  # noqa: PLC0415
    from workers.ops.replay import advance_replay  # noqa: PLC0415
    from workers.registry import REGISTRY  # noqa: PLC0415

    if dry_run:
        counts = count_replay(connections.engine, selection)
        print(f"would replay {counts.deliveries} deliveries on {counts.events} events")
        return 0
    replay, runner = create_replay(connections.engine, selection, created_by="cli", request_id=new_request_id(None))
    print(f"replay {replay.id}: {replay.deliveries} deliveries on {replay.events} events", flush=True)
    with Progress("hookyard replay", replay.deliveries, "deliveries") as progress:
        outcome = advance_replay(connections, REGISTRY, default_max, replay.id, runner, on_batch=progress.advance)
    if outcome == "superseded":
        print(f"hookyard replay: replay {replay.id} was taken over by a worker; see GET /v1/replays/{replay.id}")
        return 0
    print(f"replayed {replay.deliveries} deliveries on {replay.events} events")
    return 0
