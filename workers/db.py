"""Engines and sessions for SQLite (embedded) and PostgreSQL (production).

Engines are made per process, never shared across `fork()`, and ping their
connections so a database restart costs a retry, not a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from schemas.settings import DatabaseSettings


def make_engine(settings: DatabaseSettings, *, autocommit: bool = False) -> Engine:
    """`autocommit` (PostgreSQL): a pool whose connections never open a transaction, for
    writes that are a single statement; set at creation so no checkout pays to switch modes.
    It skips the pre-ping: those statements are idempotent and retried whole on a
    connection error (`workers.jobs.with_database`), so the ping's round trip buys nothing."""
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        isolation_level="AUTOCOMMIT" if autocommit else None,
        pool_pre_ping=not autocommit,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        connect_args={"connect_timeout": 5},
    )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL lets the API read while a worker writes; NORMAL sync is durable under WAL."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
