"""What one API process holds: settings, the Redis client, the enqueue path, the database.

Built lazily at start-up (never at import), so importing the app touches no
network, and torn down at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from sqlalchemy.engine import Engine

from schemas.settings import Settings
from service.ratelimit import IngestLimiter
from service.sources import ClientAddress, Source, build_sources
from workers.db import make_engine
from workers.enqueue import EventQueue
from workers.redis_conn import async_redis_from_url
from workers.spool import Spool


def async_redis(settings: Settings) -> aioredis.Redis:
    return async_redis_from_url(
        settings.redis.url, socket_timeout=settings.redis.socket_timeout_seconds, max_connections=512
    )


@dataclass
class Runtime:
    settings: Settings
    sources: dict[str, Source]
    client_address: ClientAddress
    spool: Spool
    _redis: aioredis.Redis | None = None
    _queue: EventQueue | None = None
    _engine: Engine | None = None
    _limiter: IngestLimiter | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            sources=build_sources(settings),
            client_address=ClientAddress(settings.server.trusted_proxies),
            spool=Spool(settings.server.spool_path),
        )

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = async_redis(self.settings)
        return self._redis

    @property
    def queue(self) -> EventQueue:
        if self._queue is None:
            self._queue = EventQueue(self.redis, self.settings.redis.queue, self.spool, self.settings.worker.batch_size)
        return self._queue

    @property
    def limiter(self) -> IngestLimiter:
        if self._limiter is None:
            self._limiter = IngestLimiter(self.redis)
        return self._limiter

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database)
        return self._engine

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.queue.drain_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
            self._queue = None
            self._limiter = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
