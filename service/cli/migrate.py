"""`hookyard migrate`: create or upgrade the database schema (Alembic)."""

from __future__ import annotations

import argparse

from schemas.migrate import upgrade
from schemas.settings import Settings
from service.cli._common import Subparsers
from workers.shared.connections import make_engine


def add_command(commands: Subparsers) -> None:
    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(func=run)


def run(_args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print(f"database schema is up to date ({engine.url.render_as_string(hide_password=True)})")
    return 0
