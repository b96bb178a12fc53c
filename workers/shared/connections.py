"""Connections, built in one place: Redis (sync, async, Sentinel), the RQ queue, the database.

The API, the workers and the CLI all build their clients through
`Connections`, so a `redis+sentinel://` URL, a socket timeout or a pool size
means the same everywhere. Nothing here touches the network until a client
is first used.

redis-py understands `redis://`, `rediss://` and `unix://` itself; it has no
URL form for Sentinel, so `redis+sentinel://` is parsed here:

    redis+sentinel://[[user:]password@]host[:port][,host[:port]...]/service_name[/db][?sentinel_password=...]

The password is the master's. Sentinels are asked without one unless
`sentinel_password` is given. The client follows failovers: every new
connection asks the sentinels where the master is now.

Engines are made per process, never shared across `fork()`. SQLite runs in
WAL mode (the API reads while a worker writes); PostgreSQL gets a second,
autocommit pool for the worker's batch writes that are one statement each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, unquote

import redis
import redis.asyncio
import redis.asyncio as aioredis
import redis.asyncio.sentinel
import redis.sentinel
from redis import Redis as SyncRedis
from rq import Queue
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from schemas.settings import DatabaseSettings, Settings
from workers.shared.defaults import (
    REDIS_BLOCKING_MARGIN_SECONDS,
    RUN_DELIVERIES,
    RUN_JOB_CHUNK,
    job_options,
)
from workers.shared.serializer import JSONSerializer

T = TypeVar("T")

SENTINEL_SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelURL:
    """A parsed `redis+sentinel://` URL."""

    hosts: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a `redis+sentinel://` URL; a malformed one raises ValueError naming the part."""
    if not url.startswith(SENTINEL_SCHEME):
        raise ValueError(f"not a {SENTINEL_SCHEME} URL: {url!r}")
    rest, _, query = url.removeprefix(SENTINEL_SCHEME).partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = (unquote(user) or None, unquote(secret)) if colon else (None, unquote(user))
    hosts = tuple(_host_port(part) for part in hostlist.split(","))
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise ValueError(f"sentinel URL needs /service_name[/db], got /{path!r}")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"sentinel URL database must be a number, got {parts[1]!r}")
        db = int(parts[1])
    options = parse_qs(query)
    unknown = set(options) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"sentinel URL: unknown option {sorted(unknown)[0]!r}")
    sentinel_password = options.get("sentinel_password", [None])[-1]
    return SentinelURL(hosts, unquote(parts[0]), db, username, password, sentinel_password)


def _host_port(text: str) -> tuple[str, int]:
    if not text:
        raise ValueError("sentinel URL needs at least one host")
    if text.startswith("["):  # [::1]:26379
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"sentinel URL: empty host in {text!r}")
    if port and not port.isdigit():
        raise ValueError(f"sentinel URL: port of {text!r} is not a number")
    return host, int(port) if port else DEFAULT_SENTINEL_PORT


def redis_from_url(
    url: str, *, socket_timeout: float, connect_timeout: float | None = None, **options: Any
) -> redis.Redis:
    """A sync client (bytes replies, as RQ needs) whose every call is bounded by `socket_timeout`."""
    connect_timeout = socket_timeout if connect_timeout is None else connect_timeout
    if url.startswith(SENTINEL_SCHEME):
        parsed = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(parsed.hosts),
            sentinel_kwargs=_sentinel_kwargs(parsed, socket_timeout),
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            parsed.service_name, db=parsed.db, username=parsed.username, password=parsed.password, **options
        )
        return client
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout, **options)


def async_redis_from_url(url: str, *, socket_timeout: float, **options: Any) -> redis.asyncio.Redis:
    """The `redis.asyncio` twin of `redis_from_url`, for the API's event loop."""
    if url.startswith(SENTINEL_SCHEME):
        parsed = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.hosts),
            sentinel_kwargs=_sentinel_kwargs(parsed, socket_timeout),
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
        async_client: redis.asyncio.Redis = sentinel.master_for(
            parsed.service_name, db=parsed.db, username=parsed.username, password=parsed.password, **options
        )
        return async_client
    return redis.asyncio.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout, **options
    )


def _sentinel_kwargs(parsed: SentinelURL, socket_timeout: float) -> dict[str, object]:
    kwargs: dict[str, object] = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout}
    if parsed.sentinel_password is not None:
        kwargs["password"] = parsed.sentinel_password
    return kwargs


# --- the database ------------------------------------------------------------------------------


def make_engine(settings: DatabaseSettings, *, autocommit: bool = False) -> Engine:
    """`autocommit` (PostgreSQL): a pool whose connections never open a transaction, for
    writes that are a single statement; set at creation so no checkout pays to switch modes.
    It skips the pre-ping: those statements are idempotent and retried whole on a
    connection error (`WorkerContext.with_database`), so the ping's round trip buys nothing."""
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
    """WAL lets the API read while a worker writes; FULL sync fsyncs the WAL at every commit (NORMAL
    would let a power cut undo the last commits: stored events and recorded outcomes; CONTRACT section 9)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# --- everything one process talks to -----------------------------------------------------------


class Connections:
    """One process's clients, each built on first use (from any thread) and closed together.

    `blocking`: a worker, whose Redis read timeout must outlast RQ's blocking
    dequeue; everyone else gets `[redis] socket_timeout_seconds` on every call.
    """

    def __init__(self, settings: Settings, *, blocking: bool = False) -> None:
        self.settings = settings
        self._blocking = blocking
        self._lock = threading.RLock()
        self._built: dict[str, Any] = {}

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return cast(T, self._built[name])

    @property
    def redis(self) -> SyncRedis:
        """Sync client with bytes replies, as RQ needs."""
        timeout = self.settings.redis.socket_timeout_seconds
        read_timeout = (
            self.settings.worker.maintenance_seconds + REDIS_BLOCKING_MARGIN_SECONDS if self._blocking else timeout
        )
        url = self.settings.redis.url
        return self._once("redis", lambda: redis_from_url(url, socket_timeout=read_timeout, connect_timeout=timeout))

    @property
    def async_redis(self) -> aioredis.Redis:
        """The API's event-loop client: ingest, rate limits, metrics."""
        timeout = self.settings.redis.socket_timeout_seconds
        return self._once(
            "async_redis",
            lambda: async_redis_from_url(self.settings.redis.url, socket_timeout=timeout, max_connections=512),
        )

    @property
    def queue(self) -> Queue:
        return self._once(
            "queue", lambda: Queue(self.settings.redis.queue, connection=self.redis, serializer=JSONSerializer)
        )

    @property
    def engine(self) -> Engine:
        return self._once("engine", lambda: make_engine(self.settings.database))

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._once("sessions", lambda: session_factory(self.engine))

    @property
    def single_statements(self) -> sessionmaker[Session] | None:
        """PostgreSQL: autocommit sessions for writes that are one statement (atomic by themselves),
        saving BEGIN and COMMIT round trips. None on SQLite."""
        if self.engine.dialect.name != "postgresql":
            return None
        return self._once(
            "single_statements", lambda: session_factory(make_engine(self.settings.database, autocommit=True))
        )

    @contextmanager
    def one_statement(self) -> Iterator[Session]:
        """A session for a write that is one statement on PostgreSQL (no BEGIN/COMMIT), else a transaction."""
        if self.single_statements is not None:
            with self.single_statements() as session:
                yield session
            return
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    def queue_deliveries(self, delivery_ids: list[int], delay: float = 0.0) -> None:
        """Queue run jobs for these deliveries, now or after `delay` seconds (through RQ's scheduler)."""
        for start in range(0, len(delivery_ids), RUN_JOB_CHUNK):
            chunk = delivery_ids[start : start + RUN_JOB_CHUNK]
            options = job_options(f"run {len(chunk)} delivery(ies)")
            if delay > 0:
                # RQ's scheduled registry keeps whole seconds, rounded down: round up so a retry never
                # fires before its backoff is over (it would find the delivery not yet due and skip it).
                due = datetime.now(UTC) + timedelta(seconds=delay)
                due = due.replace(microsecond=0) + timedelta(seconds=1) if due.microsecond else due
                self.queue.enqueue_at(due, RUN_DELIVERIES, chunk, **options)
            else:
                self.queue.enqueue(RUN_DELIVERIES, chunk, **options)

    def close(self) -> None:
        """Close the sync clients and dispose of the engines this process built (async client: `aclose`)."""
        with self._lock:
            built = {name: self._built.pop(name) for name in list(self._built) if name != "async_redis"}
        if "redis" in built:
            built["redis"].close()
        if "engine" in built:
            built["engine"].dispose()
        if "single_statements" in built:
            built["single_statements"].kw["bind"].dispose()

    async def aclose(self) -> None:
        with self._lock:
            client = self._built.pop("async_redis", None)
        if client is not None:
            await client.aclose()
