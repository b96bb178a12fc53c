"""`hookyard purge`: delete events older than a cutoff (deliveries and fingerprints too), in small batches."""

from __future__ import annotations

import argparse

from schemas.settings import Settings
from service.cli._common import Subparsers, UsageError, connected, emit, iso
from workers.ops.retention import PurgeError, PurgeReport, parse_duration, purge


def add_command(commands: Subparsers) -> None:
    p = commands.add_parser(
        "purge",
        help="delete stored events older than a cutoff, in small batches",
        description="Delete events (and their deliveries and de-duplication fingerprints), rejection-ledger "
        "rows and finished bulk replays from before now minus --older-than, and expired console sessions. "
        "Safe beside running ingest and workers.",
    )
    p.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 90d, 12h, 30m, 3600s")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N", help="events per transaction")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        older_than = parse_duration(args.older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    if args.batch_size < 1:
        raise UsageError("--batch-size: must be at least 1")
    with connected(settings, PurgeError) as connections:
        report = purge(
            connections.engine, connections.redis, older_than, batch_size=args.batch_size, dry_run=args.dry_run
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
