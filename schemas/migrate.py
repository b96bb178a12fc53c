"""Schema upgrades through Alembic, callable from the CLI, the worker and tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str, stdout: TextIO | None = None) -> Config:
    config = Config(stdout=stdout or sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _config(engine: Engine, stdout: TextIO | None = None) -> Config:
    return alembic_config(engine.url.render_as_string(hide_password=False), stdout)


def pending(engine: Engine) -> list[str]:
    """`revision: message` of each migration the database lacks, oldest first."""
    script = ScriptDirectory.from_config(_config(engine))
    with engine.connect() as connection:
        applied = MigrationContext.configure(connection).get_current_heads()
    heads = tuple(script.get_heads())
    missing = script.iterate_revisions(heads, applied) if applied else script.walk_revisions()
    return [f"{rev.revision}: {rev.doc}" for rev in reversed(list(missing)) if rev.revision not in applied]


def upgrade(engine: Engine) -> list[str]:
    """Bring the database to the newest revision; returns what was applied (nothing when it was there)."""
    applying = pending(engine)
    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return applying


def current(engine: Engine, stdout: TextIO, *, verbose: bool = False) -> None:
    """Alembic's `current`: the revision the database is at."""
    config = _config(engine, stdout)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.current(config, verbose=verbose)


def history(engine: Engine, stdout: TextIO, *, verbose: bool = False) -> None:
    """Alembic's `history`, marking the revision the database is at."""
    config = _config(engine, stdout)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.history(config, verbose=verbose, indicate_current=True)
