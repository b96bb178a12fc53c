"""`hookyard replay`: re-run handlers on one event or on every event a filter selects.

    hookyard replay --event 01a2...            # all of one event's handlers
    hookyard replay --action 'LOCATION:*' --status dead --since 2026-11-01 --handler crm-sync

`--status` takes an event status (`stored`, `processing`, `processed`,
`failed`) or a delivery status (`pending`, `retrying`, `succeeded`, `dead`):
with a delivery status only deliveries in it are replayed. The rules are
`workers.ops.replay`'s, the same as `POST /v1/events/{id}/replay`. Events are
walked oldest first in keyset batches, one transaction and one queue push
per batch, so a large replay never holds one huge transaction. Bad arguments
exit 2 with one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from service.cli._common import Subparsers, UsageError, add_parser
from service.cli._progress import Progress

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from schemas.settings import Settings
    from service.api.filters import EventFilter
    from workers.ops.replay import Replayed
    from workers.shared.connections import Connections

BATCH = 500
EVENT_STATUSES = ("stored", "processing", "processed", "failed")
DELIVERY_STATUSES = ("pending", "retrying", "succeeded", "dead")
"""`schemas.tables.EventStatus.ALL` / `DeliveryStatus.ALL`, spelled out so `--help` needs no SQLAlchemy
(tests/service/cli/test_cli.py checks they agree)."""


def add_command(commands: Subparsers) -> None:
    replay = add_parser(
        commands,
        "replay",
        summary="re-run handlers on stored events",
        description="Give the chosen deliveries a fresh budget of max_attempts and queue them. Either one "
        "event (--event) or every event a filter selects, oldest first, in batches of 500. "
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

    from schemas.errors import Invalid  # noqa: PLC0415
    from schemas.ids import is_event_id  # noqa: PLC0415
    from service.api.filters import EventFilter  # noqa: PLC0415
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
    event_status = args.status if args.status in EVENT_STATUSES else None
    delivery_status = args.status if args.status in DELIVERY_STATUSES else None
    try:
        where = EventFilter.parse(
            source=args.source, action=args.action, status=event_status, since=args.since, until=args.until
        )
    except Invalid as exc:
        raise UsageError(f"--{exc.what.lower()}: {exc.detail}") from None
    REGISTRY.load_configured(
        settings.handlers, on_error=lambda exc: print(f"hookyard replay: warning: {exc}", file=sys.stderr)
    )
    connections = Connections(settings)
    engine = connections.engine
    statuses = None if delivery_status is None else [delivery_status]
    default_max = settings.handlers.default_max_attempts
    try:
        if args.event is not None:
            with Session(engine) as session:
                event = load_event(session, args.event)
                if event is None:
                    print(f"hookyard replay: no stored event {args.event}", file=sys.stderr)
                    return 1
                result = replay_event(session, event, REGISTRY, default_max, handlers=args.handlers)
                _finish(session, dry_run=args.dry_run)
            if not args.dry_run:
                queue_replayed(connections, [result])
            print(_describe(result))
            return 0
        return _replay_many(engine, connections, where, args, statuses, default_max)
    except UnknownHandlers as exc:
        raise UsageError(exc.detail) from None
    except (redis.RedisError, OSError) as exc:
        print(f"hookyard replay: queued nothing new ({type(exc).__name__}); the worker sweep picks up", file=sys.stderr)
        return 1
    finally:
        connections.close()


def _finish(session: Session, *, dry_run: bool) -> None:
    if dry_run:
        session.rollback()
    else:
        session.commit()


def _replay_many(
    engine: Engine,
    connections: Connections,
    where: EventFilter,
    args: argparse.Namespace,
    statuses: list[str] | None,
    default_max: int,
) -> int:
    from sqlalchemy import exists, func, literal, select, tuple_  # noqa: PLC0415
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from schemas.tables import DeliveryRow, EventRow, UTCDateTime  # noqa: PLC0415
    from workers.ops.replay import queue_replayed, replay_events  # noqa: PLC0415
    from workers.registry import REGISTRY  # noqa: PLC0415

    query = select(EventRow.id, EventRow.received_at).where(*where.clauses())
    if statuses is not None:
        query = query.where(exists().where(DeliveryRow.event_id == EventRow.id, DeliveryRow.status.in_(statuses)))
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    query = query.order_by(EventRow.received_at, EventRow.id).limit(BATCH)
    after: Any = None
    events = deliveries = 0
    with Progress("hookyard replay", total, "events") as progress:
        while True:
            page = query if after is None else query.where(tuple_(EventRow.received_at, EventRow.id) > after)
            with Session(engine) as session:
                rows = session.execute(page).all()
                if not rows:
                    break
                after = tuple_(literal(rows[-1].received_at, UTCDateTime()), literal(rows[-1].id))
                results = replay_events(
                    session, [row.id for row in rows], REGISTRY, default_max, handlers=args.handlers, statuses=statuses
                )
                _finish(session, dry_run=args.dry_run)
            if not args.dry_run:
                queue_replayed(connections, results)
            for result in results:
                if result.deliveries:
                    print(_describe(result))
            events += sum(1 for r in results if r.deliveries)
            deliveries += sum(len(r.deliveries) for r in results)
            progress.advance(len(rows))
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {deliveries} deliveries on {events} events")
    return 0
