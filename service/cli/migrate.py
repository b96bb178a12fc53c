"""`hookyard migrate`: create or upgrade the database schema (Alembic), or say where it stands."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, add_parser, connected

if TYPE_CHECKING:
    from schemas.settings import Settings

ACTIONS = ("upgrade", "current", "history")


def add_command(commands: Subparsers) -> None:
    migrate = add_parser(
        commands,
        "migrate",
        summary="create or upgrade the database schema",
        description="upgrade (the default) applies every migration the database lacks and names each one; "
        "current and history are Alembic's own; --check changes nothing and exits 1 if migrations are "
        "pending (a deploy pipeline's gate).",
        examples=[
            "hookyard migrate",
            "hookyard migrate --check   # exit 1 while migrations are pending",
            "hookyard migrate current",
            "hookyard migrate history",
        ],
    )
    migrate.add_argument("action", nargs="?", choices=ACTIONS, default="upgrade", help="what to do")
    migrate.add_argument("--check", action="store_true", help="apply nothing; exit 1 if migrations are pending")
    migrate.add_argument("--verbose", action="store_true", help="current/history: Alembic's verbose listing")
    migrate.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.migrate import current, history, pending, upgrade  # noqa: PLC0415 - imported when run
    from workers.shared.logs import configure_logging  # noqa: PLC0415

    configure_logging(settings.log)  # Alembic's own lines, in our format on stderr
    with connected(settings) as connections:
        engine = connections.engine
        where = engine.url.render_as_string(hide_password=True)
        if args.action == "current":
            current(engine, sys.stdout, verbose=args.verbose)
            return 0
        if args.action == "history":
            history(engine, sys.stdout, verbose=args.verbose)
            return 0
        if args.check:
            missing = pending(engine)
            for line in missing:
                print(f"pending {line}")
            print(f"{len(missing)} migration(s) pending ({where})" if missing else f"up to date ({where})")
            return 1 if missing else 0
        for line in upgrade(engine):
            print(f"applied {line}")
    print(f"database schema is up to date ({where})")
    return 0
