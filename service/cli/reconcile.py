"""`hookyard reconcile`: re-queue deliveries that nothing will run (what every worker's sweep does)."""

from __future__ import annotations

import argparse

from schemas.settings import Settings
from service.cli._common import Subparsers
from workers.context import WorkerContext
from workers.jobs import reconcile


def add_command(commands: Subparsers) -> None:
    command = commands.add_parser("reconcile", help="re-queue deliveries that nothing will run")
    command.set_defaults(func=run)


def run(_args: argparse.Namespace, settings: Settings) -> int:
    context = WorkerContext.build(settings)
    try:
        count = reconcile(context)
    finally:
        context.close()
    print(f"re-queued {count} stranded deliveries")
    return 0
