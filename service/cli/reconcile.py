"""`hookyard reconcile`: re-queue deliveries that nothing will run (what every worker's sweep does)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, add_parser

if TYPE_CHECKING:
    from schemas.settings import Settings


def add_command(commands: Subparsers) -> None:
    command = add_parser(
        commands,
        "reconcile",
        summary="re-queue deliveries that nothing will run",
        description="Queue again the deliveries whose job was lost (a Redis without persistence, a worker "
        "killed mid-handler). Every worker's maintenance pass does the same; this runs it now.",
        examples=["hookyard reconcile"],
    )
    command.set_defaults(func=run)


def run(_args: argparse.Namespace, settings: Settings) -> int:
    from workers.context import WorkerContext  # noqa: PLC0415 - commands import the stack when they run
    from workers.jobs import reconcile  # noqa: PLC0415

    context = WorkerContext.build(settings)
    try:
        count = reconcile(context)
    finally:
        context.close()
    print(f"re-queued {count} stranded deliveries")
    return 0
