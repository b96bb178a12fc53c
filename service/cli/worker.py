"""`hookyard worker`: supervised RQ worker processes (`--burst` drains the queue and exits)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, UsageError, add_parser, positive

if TYPE_CHECKING:
    from schemas.settings import Settings


def add_command(commands: Subparsers) -> None:
    worker = add_parser(
        commands,
        "worker",
        summary="run RQ workers that store events and run handlers",
        description="Run worker processes under a supervisor that restarts a crashed one. SIGTERM lets a "
        "running handler finish (its time limit + 15 s), hands unstarted deliveries back, then exits 0.",
        examples=["hookyard worker", "hookyard worker --processes 4", "hookyard worker --burst   # drain, then exit"],
    )
    worker.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    worker.add_argument("--processes", type=positive, default=1, help="worker processes")
    worker.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.registry import REGISTRY, HandlerError  # noqa: PLC0415 - commands import the stack when they run
    from workers.shared.logs import configure_logging  # noqa: PLC0415
    from workers.worker import run_one, supervise  # noqa: PLC0415

    configure_logging(settings.log)
    try:  # a handler module that fails or a forward whose name is taken: one line, before any process starts
        REGISTRY.load_configured(settings)
    except HandlerError as exc:
        raise UsageError(str(exc)) from None
    if args.burst:
        return run_one(settings, burst=True)
    return supervise(args.processes, settings)
