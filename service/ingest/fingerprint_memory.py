"""Ingest's side of `workers.ops.fingerprints`: a re-delivery is a duplicate even after Redis forgot it.

The enqueue script reports whether the Redis server it ran on has a
fingerprint memory known whole (the `run_id` it was rebuilt for is its
own). While it has not (a server restarted without its data, a failed-over
replica, a restored backup), each group commit's events are looked up in the
database, one query, before the answers go out: an event stored before is
answered 200 `duplicate` with its first id, and Redis is pointed back at
that id. A copy the script already queued is refused by the database's
unique `(source, fingerprint)` when a worker stores it. Meanwhile one API
process rebuilds the memory from the database in a thread, after which the
lookups stop. The spool path (Redis away) asks the database the same way.

Ingest never waits long on the database for this: a lookup runs on a
thread of its own and is given up after `FINGERPRINT_LOOKUP_SECONDS`; after
a failure or a timeout, lookups pause for `FINGERPRINT_LOOKUP_PAUSE_SECONDS`
(the answers are then Redis's or the spool's, as before: the constraint
still stores each event once).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import redis
import redis.asyncio as aioredis
import structlog
from sqlalchemy.engine import Engine

from schemas.wire import QueuedEvent
from workers.ops.fingerprints import HSET_IF_OWNED, Key, rebuild, repoint_args, stored_ids
from workers.shared.defaults import (
    FINGERPRINT_LOOKUP_PAUSE_SECONDS,
    FINGERPRINT_LOOKUP_SECONDS,
    FINGERPRINT_REBUILD_RETRY_SECONDS,
)

log = structlog.get_logger("hookyard.fingerprints")


class FingerprintMemory:
    def __init__(
        self, client: aioredis.Redis, engine: Callable[[], Engine], sync_redis: Callable[[], redis.Redis]
    ) -> None:
        self._repoint = client.register_script(HSET_IF_OWNED)
        self._engine = engine
        self._sync_redis = sync_redis
        self._lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookyard-fingerprints")
        self._paused_until = 0.0
        self._rebuilding: asyncio.Task[None] | None = None
        self._next_rebuild = 0.0
        self._stop = threading.Event()

    async def resolve(self, events: Sequence[QueuedEvent], answers: list[str], run_id: str) -> list[str]:
        """`answers` as the script gave them ('' = queued now, else the id Redis named), corrected by the
        database and Redis pointed at its ids; the memory of server `run_id` is rebuilt meanwhile."""
        self._start_rebuild(run_id)
        corrected, moves = await self._correct(events, answers)
        if moves:
            try:
                for key, args in repoint_args(moves).items():
                    await self._repoint(keys=[key], args=args)
            except Exception as exc:  # noqa: BLE001 - the worker repoints them when it stores the copies
                log.warning("fingerprints_not_repointed", error=type(exc).__name__)
        return corrected

    async def look_up(self, events: Sequence[QueuedEvent], answers: list[str]) -> list[str]:
        """For the spool, while Redis is away: its answers ('' = spooled now, else the spooled copy's id),
        corrected by the database."""
        corrected, _moves = await self._correct(events, answers)
        return corrected

    async def _correct(
        self, events: Sequence[QueuedEvent], answers: list[str]
    ) -> tuple[list[str], list[tuple[str, str, str, str]]]:
        """Every event the database holds (by source and fingerprint) is answered with the id it holds,
        repeats within the batch too; and the (source, fingerprint, id named, stored id) moves for Redis."""
        stored = await self._stored(events)
        if not stored:
            return answers, []
        corrected: list[str] = []
        moves: dict[Key, tuple[str, str, str, str]] = {}
        changed: list[QueuedEvent] = []
        for event, answer in zip(events, answers, strict=True):
            key = (event.source, event.fingerprint)
            first = stored.get(key)
            if first is None or first == answer:
                corrected.append(answer)
                continue
            moves.setdefault(key, (event.source, event.fingerprint, answer or event.id, first))
            corrected.append(first)
            changed.append(event)
        if changed:
            log.warning(
                "duplicates_found_in_the_database",
                events=len(changed),
                event_ids=[event.id for event in changed[:10]],
                first_ids=[stored[(event.source, event.fingerprint)] for event in changed[:10]],
                request_ids=[event.request_id for event in changed[:10]],
            )
        return corrected, list(moves.values())

    async def _stored(self, events: Sequence[QueuedEvent]) -> dict[Key, str]:
        if time.monotonic() < self._paused_until:
            return {}
        keys = [(event.source, event.fingerprint) for event in events]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(FINGERPRINT_LOOKUP_SECONDS):
                return await loop.run_in_executor(self._lookups, stored_ids, self._engine(), keys)
        except Exception as exc:  # noqa: BLE001 - never fail or hold up the answers for a lookup
            self._paused_until = time.monotonic() + FINGERPRINT_LOOKUP_PAUSE_SECONDS
            log.warning(
                "fingerprint_lookup_failed",
                error=type(exc).__name__,
                paused_seconds=FINGERPRINT_LOOKUP_PAUSE_SECONDS,
                event_ids=[event.id for event in events[:10]],
            )
            return {}

    def _start_rebuild(self, run_id: str) -> None:
        if run_id and self._rebuilding is None and time.monotonic() >= self._next_rebuild:
            self._rebuilding = asyncio.create_task(self._rebuild(run_id))

    async def _rebuild(self, run_id: str) -> None:
        started = time.monotonic()
        done = False
        try:
            done = await asyncio.to_thread(rebuild, self._engine(), self._sync_redis(), run_id, self._stop)
        except Exception as exc:  # noqa: BLE001 - retried by a later group commit
            log.warning("fingerprint_rebuild_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._rebuilding = None
        if done:
            log.info("fingerprint_memory_rebuilt", run_id=run_id, seconds=round(time.monotonic() - started, 3))
        else:  # failed, stopped, or another process holds the lock: do not ask again at every group commit
            self._next_rebuild = time.monotonic() + FINGERPRINT_REBUILD_RETRY_SECONDS

    async def stop(self, seconds: float = 5.0) -> None:
        """On shutdown: a rebuild stops after its page and releases its lock (the next start redoes it)."""
        self._stop.set()
        rebuilding = self._rebuilding
        if rebuilding is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(rebuilding), seconds)
        self._lookups.shutdown(wait=False, cancel_futures=True)
