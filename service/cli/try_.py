"""`hookyard try HANDLER --event ID`: run one handler on one stored event here, recording nothing.

For handler authors: the handler runs exactly as a worker would run it (its
time limit, the async loop, the same `Event`), but no delivery is claimed or
written and no event is emitted. A forward really sends its request.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, UsageError, add_parser, connected, positive

if TYPE_CHECKING:
    from schemas.settings import Settings

TRACEBACK_FRAMES = 5
"""The innermost frames of a failure's traceback that are printed: the handler's own, as a rule."""


def add_command(commands: Subparsers) -> None:
    parser = add_parser(
        commands,
        "try",
        summary="run one handler on one stored event, recording nothing",
        description="Run HANDLER in this process on a stored event, as a worker would (its time limit, the "
        "same Event, attempt 1 unless --attempt), and print what came of it: exit 0 if it succeeded, 1 if it "
        "failed. Nothing is recorded: no delivery changes, no event is emitted. Side effects are real: a "
        "forward really POSTs its signed request (with the delivery's webhook-id, so a receiver that "
        "de-duplicates sees a repeat).",
        examples=[
            "hookyard try crm-sync --event 0190f3c2-5b7e-7a1c-9d2e-3f4a5b6c7d8e",
            "hookyard try billing --event 0190f3c2-5b7e-7a1c-9d2e-3f4a5b6c7d8e --attempt 3",
        ],
    )
    parser.add_argument("handler", metavar="HANDLER", help="a handler or forward name (`hookyard handlers` lists them)")
    parser.add_argument("--event", required=True, metavar="ID", help="the id of a stored event")
    parser.add_argument("--attempt", type=positive, default=1, help="the attempt number the handler sees")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select  # noqa: PLC0415 - commands import the stack when they run

    from schemas.ids import is_event_id  # noqa: PLC0415
    from schemas.tables import EventRow  # noqa: PLC0415
    from workers import deliver  # noqa: PLC0415
    from workers.context import WorkerContext  # noqa: PLC0415
    from workers.event import PermanentError  # noqa: PLC0415
    from workers.registry import REGISTRY, HandlerError  # noqa: PLC0415

    if not is_event_id(args.event):
        raise UsageError(f"--event {args.event!r} is not an event id")
    try:
        REGISTRY.load_configured(settings)
    except HandlerError as exc:
        raise UsageError(str(exc)) from None
    spec = REGISTRY.get(args.handler)
    if spec is None:
        names = ", ".join(sorted(REGISTRY.names())) or "none registered"
        raise UsageError(f"no handler named {args.handler!r} (handlers: {names})")
    with connected(settings) as connections:
        with connections.sessions() as session:
            row = session.scalars(select(EventRow).where(EventRow.id == args.event)).first()
        if row is None:
            raise UsageError(f"no stored event {args.event}")
        context = WorkerContext(settings=settings, connections=connections, registry=REGISTRY)
        started = time.perf_counter()
        try:
            deliver.call(context, spec, row, args.attempt)
        except Exception as exc:  # noqa: BLE001 - the handler's failure is what this command reports
            took = (time.perf_counter() - started) * 1000.0
            verdict = "dead at once (PermanentError)" if isinstance(exc, PermanentError) else "failed (retried)"
            print(f"{spec.name} on {row.id} ({row.action}): {verdict} after {took:.1f} ms")
            print(deliver.describe(exc))
            frames = traceback.format_tb(exc.__traceback__)[-TRACEBACK_FRAMES:]
            sys.stdout.write("".join(frames))
            return 1
        finally:
            if context.handler_loop is not None:
                context.handler_loop.close()
    took = (time.perf_counter() - started) * 1000.0
    print(f"{spec.name} on {row.id} ({row.action}): succeeded in {took:.1f} ms")
    return 0
