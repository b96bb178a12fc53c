"""Per-process state of a worker: settings, connections, handler registry, progress, stop flag, async loop.

RQ calls jobs as plain module functions, so they find their context here.
It is built once per process (never shared across `fork()`), by the worker
at start or lazily from the environment.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import redis
import structlog
from rq import Queue
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from schemas.settings import Settings, load_settings
from workers.lease import Holdings
from workers.progress import Progress
from workers.registry import REGISTRY, Registry
from workers.shared.connections import Connections
from workers.shared.defaults import DB_RETRY_MAX_SECONDS

log = structlog.get_logger("hookyard.worker")
T = TypeVar("T")
P = ParamSpec("P")


class HandBack(Exception):
    """The worker is stopping while the database is away: requeue instead of waiting."""


def database_down(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | DisconnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass
class WorkerContext:
    settings: Settings
    connections: Connections
    registry: Registry
    progress: Progress = field(default_factory=lambda: Progress(None))
    """Which claimed delivery runs now, for the supervisor if this process dies."""
    leases: Holdings = field(default_factory=Holdings)
    """The leases this process holds until their outcomes are committed (the heartbeat renews them)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set on SIGTERM: long waits (database away) hand their work back instead."""
    handler_loop: asyncio.AbstractEventLoop | None = None
    """The event loop async handlers run on, made on first use (`workers.deliver`)."""

    @classmethod
    def build(
        cls,
        settings: Settings,
        registry: Registry = REGISTRY,
        load_plugins: bool = True,
        progress_path: str | None = None,
    ) -> WorkerContext:
        if load_plugins:
            registry.load_configured(settings)
        return cls(
            settings=settings,
            connections=Connections(settings, blocking=True),
            registry=registry,
            progress=Progress(progress_path),
        )

    @property
    def engine(self) -> Engine:
        return self.connections.engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.connections.sessions

    @property
    def redis(self) -> redis.Redis:
        return self.connections.redis

    @property
    def queue(self) -> Queue:
        return self.connections.queue

    def with_database(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `work(*args, **kwargs)`, waiting out database outages with capped exponential backoff.

        If the worker is asked to stop meanwhile, `HandBack` tells the job to put its
        work back on the queue, so nothing is failed or lost because the database was away.
        """
        delay = 0.5
        while True:
            try:
                return work(*args, **kwargs)
            except Exception as exc:
                if not database_down(exc):
                    raise
                log.warning("database_unavailable", error=type(exc).__name__, retry_in_seconds=delay)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if self.stopping.is_set():
                    raise HandBack
                time.sleep(min(0.2, delay))
            delay = min(delay * 2, DB_RETRY_MAX_SECONDS)

    def close(self) -> None:
        self.connections.close()
        self.progress.close()
        if self.handler_loop is not None:
            self.handler_loop.close()
            self.handler_loop = None


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
