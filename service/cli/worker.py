"""`hookyard worker`: supervised RQ worker processes (`--burst` drains the queue and exits)."""

from __future__ import annotations

import argparse

from schemas.settings import Settings
from service.cli._common import Subparsers, positive
from workers.shared.logs import configure_logging
from workers.worker import run_one, supervise


def add_command(commands: Subparsers) -> None:
    worker = commands.add_parser("worker", help="run RQ workers that store events and run handlers")
    worker.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    worker.add_argument("--processes", type=positive, default=1, help="worker processes (default 1)")
    worker.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log)
    if args.burst:
        return run_one(settings, burst=True)
    return supervise(args.processes, settings)
