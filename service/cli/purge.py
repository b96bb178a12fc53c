"""`hookyard purge`: delete events older than a cutoff (deliveries and fingerprints too), in small batches."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, add_parser, checked, connected, emit, iso, positive
from service.cli._progress import Progress

if TYPE_CHECKING:
    from schemas.settings import Settings
    from workers.ops.retention import PurgeReport


def add_command(commands: Subparsers) -> None:
    p = add_parser(
        commands,
        "purge",
        summary="delete stored events older than a cutoff, in small batches",
        description="Delete events (and their deliveries and de-duplication fingerprints), rejection-ledger "
        "rows and finished bulk replays from before now minus --older-than, and expired console sessions. "
        "Safe beside running ingest and workers: each batch is its own short transaction. Progress goes to stderr.",
        examples=[
            "hookyard purge --older-than 90d --dry-run",
            "hookyard purge --older-than 90d",
            "hookyard purge --older-than 12h --batch-size 200 --json",
        ],
    )
    p.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 90d, 12h, 30m, 3600s")
    p.add_argument("--batch-size", type=positive, default=1000, metavar="N", help="events per transaction")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.ops.retention import PurgeError, parse_duration, purge  # noqa: PLC0415 - imported when run

    older_than = checked(parse_duration, args.older_than, "--older-than")
    with connected(settings, PurgeError) as connections:
        planned = purge(connections.engine, connections.redis, older_than, dry_run=True)
        if args.dry_run:
            return emit(planned, args.json, format_purge)
        with Progress("hookyard purge", planned.events, "events") as progress:
            report = purge(
                connections.engine, connections.redis, older_than, batch_size=args.batch_size, on_batch=progress.advance
            )
    return emit(report, args.json, format_purge)


def format_purge(report: PurgeReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    lines = [
        f"{verb} {report.events} events and {report.deliveries} deliveries received before {iso(report.cutoff)}",
    ]
    if not report.dry_run:
        lines.append(f"removed {report.fingerprints} fingerprints in {report.batches} batches")
    lines.append(f"{verb} {report.rejections} rejection-ledger rows and {report.replays} finished replays")
    return "\n".join(lines) + "\n"
