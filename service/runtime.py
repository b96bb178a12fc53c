"""What one API process holds: settings, the Redis client, the enqueue path, the database, the rejection ledger.

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
from service.ingest.enqueue import EventQueue
from service.ingest.fingerprint_memory import FingerprintMemory
from service.ingest.rejections import RejectionLedger
from service.ingest.sources import ClientAddress, Source, build_sources
from service.ingest.spool import Spool
from service.limiter import Limiter
from workers.shared.connections import Connections
from workers.shared.defaults import SPOOL_SHUTDOWN_SECONDS


@dataclass
class Runtime:
    settings: Settings
    connections: Connections
    sources: dict[str, Source]
    client_address: ClientAddress
    spool: Spool
    rejections: RejectionLedger
    _queue: EventQueue | None = None
    _limiter: Limiter | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        connections = Connections(settings)
        return cls(
            settings=settings,
            connections=connections,
            sources=build_sources(settings),
            client_address=ClientAddress(settings.server.trusted_proxies),
            spool=Spool(settings.server.spool_path),
            rejections=RejectionLedger(lambda: connections.engine, [source.name for source in settings.sources]),
        )

    @property
    def redis(self) -> aioredis.Redis:
        return self.connections.async_redis

    @property
    def queue(self) -> EventQueue:
        if self._queue is None:
            self._queue = EventQueue(
                self.redis,
                self.settings.redis.queue,
                self.spool,
                self.settings.worker.batch_size,
                self.settings.redis.socket_timeout_seconds,
                FingerprintMemory(self.redis, lambda: self.connections.engine, lambda: self.connections.redis),
            )
        return self._queue

    @property
    def limiter(self) -> Limiter:
        if self._limiter is None:
            self._limiter = Limiter(self.redis, "ingest")
        return self._limiter

    @property
    def engine(self) -> Engine:
        return self.connections.engine

    async def start(self) -> None:
        await self.queue.start()
        self._tasks.append(asyncio.create_task(self.queue.drain_forever()))
        self._tasks.append(asyncio.create_task(self.queue.check_fsync_forever()))
        self._tasks.append(asyncio.create_task(self.rejections.flush_forever()))

    async def stop(self) -> None:
        """After uvicorn answered the last request: a last drain of the spool (Redis may be back
        within the grace period; the spool's volume keeps the rest for the next start), then close."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.queue.memory is not None:
            await self.queue.memory.stop()
        await self.queue.drain_before_exit(SPOOL_SHUTDOWN_SECONDS)
        await self.rejections.flush()
        self._queue = None
        self._limiter = None
        self.spool.close()
        await self.connections.aclose()
        await asyncio.to_thread(self.connections.close)
