"""`hookyard spool`: what this host's spool holds, and re-driving the rows it set aside.

Every spooled event was acknowledged (202), so a row the drainer could not
decode (written by another version) is quarantined, never dropped:
`hookyard_spool_quarantined` counts them, and `redrive` puts each that
decodes now back in line, at its original place, for `serve` to drain.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, Unreachable, add_parser, emit

if TYPE_CHECKING:
    from schemas.settings import Settings
    from service.ingest.spool import Spool, SpoolReport


def add_command(commands: Subparsers) -> None:
    p = add_parser(
        commands,
        "spool",
        summary="show this host's spool, or re-drive its quarantined rows",
        description="The spool ([server] spool_path) holds events acknowledged while Redis was away until "
        "`serve` moves them into Redis. `status` counts them; `redrive` puts quarantined rows (acknowledged "
        "events the running version could not decode) back in line, in their original order, for `serve` to "
        "drain; it exits 1 while some rows still do not decode (run it again after upgrading). "
        "`wait` blocks until the spool is empty (a Kubernetes preStop hook) or --timeout passes (exit 1).",
        examples=[
            "hookyard spool status",
            "hookyard spool redrive",
            "hookyard spool wait --timeout 60",
            "hookyard spool status --json",
        ],
    )
    p.add_argument("action", choices=["status", "redrive", "wait"], help="what to do")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="`wait`: give up after this long")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from service.ingest.spool import Spool, SpoolError, SpoolReport  # noqa: PLC0415 - imported when run

    spool = Spool(settings.server.spool_path)
    try:
        if args.action == "wait":
            return _wait(spool, args.timeout)
        redriven = left = 0
        if args.action == "redrive":
            redriven, left = spool.redrive()
        report = SpoolReport(
            path=str(spool.path), waiting=spool.count(), quarantined=spool.quarantined(), redriven=redriven
        )
    except SpoolError as exc:
        raise Unreachable(str(exc)) from None
    emit(report, args.json, _format if args.action == "status" else _format_redrive)
    return 1 if left else 0


def _wait(spool: Spool, timeout: float) -> int:
    """Poll until `serve` has moved every spooled event into Redis (its drainer runs every second)."""
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while (waiting := spool.count()) > 0:
        if time.monotonic() >= deadline:
            print(f"hookyard spool: {waiting} event(s) still waiting after {timeout:g} s")
            return 1
        time.sleep(0.5)
    return 0


def _format(report: SpoolReport) -> str:
    return f"{report.path}: {report.waiting} event(s) waiting for Redis, {report.quarantined} quarantined\n"


def _format_redrive(report: SpoolReport) -> str:
    text = f"{report.redriven} row(s) back in the spool ({report.waiting} waiting for Redis)\n"
    if report.quarantined:
        text += (
            f"{report.quarantined} row(s) still unreadable by this version: upgrade hookyard and run "
            "`hookyard spool redrive` again\n"
        )
    return text
