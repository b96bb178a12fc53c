"""Databases and configuration for a bench run: fresh SQLite files, throwaway PostgreSQL schemas.

PostgreSQL comes from `HOOKYARD_BENCH_POSTGRES_URL`, or the CI default on
127.0.0.1 when it answers; each measurement gets a schema of its own that is
dropped afterwards, so a bench never touches real data.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bench.procs import API_KEY, SECRET, VENDOR_KEYS
from schemas.migrate import upgrade

POSTGRES_ENV = "HOOKYARD_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base() -> str | None:
    """The PostgreSQL URL to use, or None when none is reachable."""
    url = os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return url


def postgres_version(base: str) -> str:
    engine = create_engine(base)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("show server_version")).scalar_one()).split()[0]
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@contextlib.contextmanager
def database(kind: str, workdir: Path, pg_base: str | None) -> Iterator[str]:
    """A migrated, empty database of `kind` ("sqlite" or "postgres"); yields its URL."""
    if kind == "sqlite":
        path = workdir / f"hookyard-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        migrate(url)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if pg_base is None:
        raise RuntimeError("no PostgreSQL")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def write_config(path: Path, *, port: int, redis_url: str, database_url: str, spool: Path) -> Path:
    """A hookyard TOML for the bench: a `gxm` source and a vendor one per `VENDOR_KEYS`, a read key, the handler."""
    q = msgspec.json.encode
    vendors = [
        line
        for preset, (_key, secret) in VENDOR_KEYS.items()
        for line in (
            "[[sources]]",
            f"name = {q(preset).decode()}",
            f"preset = {q(preset).decode()}",
            f"secrets = [{q(secret).decode()}]",
        )
    ]
    path.write_text(
        "\n".join(
            [
                "[server]",
                'host = "127.0.0.1"',
                f"port = {port}",
                f"spool_path = {q(str(spool)).decode()}",
                "[redis]",
                f"url = {q(redis_url + '/0').decode()}",
                "[database]",
                f"url = {q(database_url).decode()}",
                "[[sources]]",
                'name = "gxm"',
                f"secrets = [{q(SECRET).decode()}]",
                *vendors,
                "[[api_keys]]",
                'name = "bench"',
                f"key = {q(API_KEY).decode()}",
                "rate_per_minute = 100000000",
                "[handlers]",
                'modules = ["bench.handlers"]',
                "[worker]",
                "heartbeat_seconds = 5",
                "maintenance_seconds = 15",
                "[log]",
                'level = "warning"',
                "",
            ]
        )
    )
    return path
