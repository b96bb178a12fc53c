"""Per-process state of a worker: settings, database, handler registry, RQ queue.

RQ calls jobs as plain module functions, so they find their context here.
It is built once per process (never shared across `fork()`), by the worker
at start or lazily from the environment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from rq import Queue
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from schemas.settings import Settings, load_settings
from workers.db import make_engine, session_factory
from workers.progress import Progress
from workers.redis_conn import redis_from_url
from workers.registry import REGISTRY, Registry
from workers.serializer import JSONSerializer


def sync_redis(settings: Settings) -> redis.Redis:
    """Its read timeout outlasts RQ's blocking dequeue (`maintenance_seconds`)."""
    return redis_from_url(
        settings.redis.url,
        socket_timeout=settings.worker.maintenance_seconds + 30.0,
        connect_timeout=settings.redis.socket_timeout_seconds,
    )


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: Registry
    redis: redis.Redis
    queue: Queue
    single_statements: sessionmaker[Session] | None = None
    """PostgreSQL: autocommit sessions for the batch writes that are one statement each
    (atomic by themselves), saving BEGIN and COMMIT round trips. None on SQLite."""
    progress: Progress = field(default_factory=lambda: Progress(None))
    """Which claimed delivery runs now, for the supervisor if this process dies."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set on SIGTERM: long waits (database away) hand their work back instead."""

    @classmethod
    def build(
        cls,
        settings: Settings,
        registry: Registry = REGISTRY,
        load_plugins: bool = True,
        progress_path: str | None = None,
    ) -> WorkerContext:
        if load_plugins:
            registry.load(settings.handlers.modules)
        engine = make_engine(settings.database)
        autocommit = make_engine(settings.database, autocommit=True) if engine.dialect.name == "postgresql" else None
        connection = sync_redis(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            single_statements=session_factory(autocommit) if autocommit is not None else None,
            registry=registry,
            redis=connection,
            queue=Queue(settings.redis.queue, connection=connection, serializer=JSONSerializer),
            progress=Progress(progress_path),
        )

    def close(self) -> None:
        self.engine.dispose()
        if self.single_statements is not None:
            bind = self.single_statements.kw.get("bind")
            if isinstance(bind, Engine):
                bind.dispose()
        self.progress.close()
        self.redis.close()


_current: WorkerContext | None = None
_lock = threading.Lock()


def set_context(context: WorkerContext | None) -> None:
    global _current
    _current = context


def get_context() -> WorkerContext:
    global _current
    with _lock:
        if _current is None:
            _current = WorkerContext.build(load_settings())
        return _current
