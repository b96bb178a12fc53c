"""Ingest's side of `workers.ops.fingerprints`: a re-delivery is a duplicate even after Redis forgot it.

The enqueue script reports whether the Redis server it ran on has a
fingerprint memory known whole. While it has not (a new server: restarted
without its data, a failed-over replica, a restored backup), each group
commit's new fingerprints are looked up in the database, one query, before
the 202s go out: an event stored before is answered 200 `duplicate` with
its first id, and Redis is pointed back at that id. The copy the script
already queued is refused by the database's unique `(source, fingerprint)`
when a worker stores it. Meanwhile one API process rebuilds the memory from
the database in a thread, after which the lookups stop.

A lookup that fails or takes longer than `FINGERPRINT_LOOKUP_SECONDS`
leaves the answer Redis gave (202, a new id; the constraint still stores
the event once): ingest never waits on a stalled database.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import redis
import redis.asyncio as aioredis
import structlog
from sqlalchemy.engine import Engine

from schemas.wire import QueuedEvent
from workers.ops.fingerprints import HSET_IF_OWNED, first_ids, rebuild, repoint_args
from workers.shared.defaults import FINGERPRINT_LOOKUP_SECONDS, FINGERPRINT_REBUILD_RETRY_SECONDS

log = structlog.get_logger("hookyard.fingerprints")


class FingerprintMemory:
    def __init__(
        self, client: aioredis.Redis, engine: Callable[[], Engine], sync_redis: Callable[[], redis.Redis]
    ) -> None:
        self._repoint = client.register_script(HSET_IF_OWNED)
        self._engine = engine
        self._sync_redis = sync_redis
        self._rebuilding: asyncio.Task[None] | None = None
        self._next_rebuild = 0.0
        self._stop = threading.Event()

    async def resolve(self, events: Sequence[QueuedEvent], answers: list[str], run_id: str) -> list[str]:
        """`answers` as the script gave them ('' = queued now), with the database's first ids filled in
        and Redis pointed at them; the memory of server `run_id` is rebuilt meanwhile."""
        self._start_rebuild(run_id)
        rows = await self._look_up(events, answers)
        if rows:
            try:
                for key, args in repoint_args(rows).items():
                    await self._repoint(keys=[key], args=args)
            except Exception as exc:  # noqa: BLE001 - the worker repoints them when it stores the copies
                log.warning("fingerprints_not_repointed", error=type(exc).__name__)
        return _answered(events, answers, rows)

    async def look_up(self, events: Sequence[QueuedEvent], answers: list[str]) -> list[str]:
        """For the spool, while Redis is away: every event is looked up (the spool's own answer, a
        spooled copy, may itself repeat a stored event), and the database's first id wins."""
        rows = await self._look_up(events, [""] * len(events))
        first = {new: first for _, _, new, first in rows}
        return [first.get(event.id, answer) for event, answer in zip(events, answers, strict=True)]

    async def _look_up(self, events: Sequence[QueuedEvent], answers: list[str]) -> list[tuple[str, str, str, str]]:
        fresh = [(e.id, e.source, e.fingerprint) for e, answer in zip(events, answers, strict=True) if not answer]
        if not fresh:
            return []
        try:
            async with asyncio.timeout(FINGERPRINT_LOOKUP_SECONDS):
                rows = await asyncio.to_thread(first_ids, self._engine(), fresh)
        except Exception as exc:  # noqa: BLE001 - the constraint still stores it once; never fail the 202
            log.warning("fingerprint_lookup_failed", error=type(exc).__name__, event_ids=[e for e, _, _ in fresh[:10]])
            return []
        if rows:
            log.warning(
                "duplicates_found_in_the_database",
                events=len(rows),
                event_ids=[new for _, _, new, _ in rows[:10]],
                first_ids=[first for _, _, _, first in rows[:10]],
            )
        return rows

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
        else:  # failed, or another process holds the lock: do not ask again at every group commit
            self._next_rebuild = time.monotonic() + FINGERPRINT_REBUILD_RETRY_SECONDS

    def stop(self) -> None:
        """On shutdown: a rebuild stops after its page (another process, or the next start, redoes it)."""
        self._stop.set()


def _answered(events: Sequence[QueuedEvent], answers: list[str], rows: list[tuple[str, str, str, str]]) -> list[str]:
    first = {new: first for _, _, new, first in rows}
    return [answer or first.get(event.id, "") for event, answer in zip(events, answers, strict=True)]
