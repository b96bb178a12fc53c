"""De-duplicate and enqueue accepted events in one atomic Redis round trip.

Ingest hands every accepted event to an `EventQueue`. Events that arrive
while a write is in flight are grouped (group commit): one Lua script call
checks each fingerprint (`HSETNX hookyard:fp:<source>`) and writes one
ordinary RQ job holding the new ones (job hash + `RPUSH` onto the queue,
exactly what `rq.Queue.enqueue` writes). A lone event goes out at once; under
load, batches grow by themselves. RQ's tools (`rq info`, registries,
rq-dashboard) see normal jobs.

Consumer-side batching: if the job at the tail of the queue is one of ours
and still `queued` (no worker has taken it: dequeue is an atomic move off
that list, and the script runs atomically), the new events are appended to
it while it is under `APPEND_BELOW_BYTES`, up to `[worker] batch_size` events and `MAX_JOB_BYTES`
per job. So while workers keep up,
each event travels alone and fast; when they fall behind, waiting jobs grow
instead of the queue, and a worker pays RQ's per-job bookkeeping and the
database's commits once per batch rather than once per event. A job RQ
re-saved (a retry; RQ compresses `data` then) no longer ends with our tail
and is never touched.

When Redis is unreachable the batch goes to the fsync'd spool instead and is
drained through the same script later, so a drained event is still
de-duplicated and never queued twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis
import redis.exceptions
import structlog

from schemas.ids import random_bytes
from schemas.wire import QueuedEvent
from service.ingest.durability import Fsync, aread
from service.ingest.fingerprint_memory import FingerprintMemory
from service.ingest.spool import Spool, SpoolError
from workers.ops.fingerprints import COMPLETE_KEY, FINGERPRINT_KEY
from workers.shared.defaults import (
    APPEND_BELOW_BYTES,
    ENQUEUE_BATCH,
    FSYNC_CHECK_SECONDS,
    JOB_RETRIES,
    JOB_RETRY_INTERVALS,
    JOB_TIMEOUT,
    MAX_JOB_BYTES,
    MAX_JOB_EVENTS,
    REDIS_RETRY_SECONDS,
    SPOOL_DRAIN_SECONDS,
    SPOOL_SHUTDOWN_SECONDS,
    STORE_BATCH,
    STORE_JOB_FAILED,
    STORE_JOB_FAILED_TIMEOUT,
    STORE_JOB_FAILURE_TTL,
    WAITAOF_TIMEOUT_SECONDS,
)

log = structlog.get_logger("hookyard.enqueue")

JOB_KEY_PREFIX = "rq:job:"

ENQUEUE_LUA = """
local queue_key, queues_key, failure_callback, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, origin, head, tail = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local timeout, retries, intervals, failure_ttl = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local job_prefix, max_events, max_bytes = ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[15])
local callback_timeout, complete_key, append_below = ARGV[16], ARGV[17], tonumber(ARGV[18])
local first = 19
local n = (#ARGV - first + 1) / 4
local parts, result = {}, {}
-- The last two answers: '1' when this server's fingerprint memory is known whole (its run_id is the
-- one the memory was rebuilt for: workers.ops.fingerprints), and that run_id. A user refused INFO
-- gets '' for the run_id, and only a missing mark counts as a memory lost.
local info, run_id, complete = redis.pcall('INFO', 'server'), '', ''
if type(info) == 'string' then
  run_id = string.match(info, 'run_id:(%x+)') or ''
end
local mark = redis.call('GET', complete_key)
if mark and (mark == run_id or run_id == '') then
  complete = '1'
end
for i = 0, n - 1 do
  local b = first + i * 4
  local fp_key, fp, id, fragment = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  if redis.call('HSETNX', fp_key, fp, id) == 1 then
    parts[#parts + 1] = fragment
    result[#result + 1] = ''
  else
    result[#result + 1] = redis.call('HGET', fp_key, fp)
  end
end
if #parts == 0 then
  result[#result + 1] = complete
  result[#result + 1] = run_id
  return result
end
-- Coalesce: a store job still waiting at the tail of the queue takes as many of these as fit.
local i = 1
local tail_id = redis.call('LINDEX', queue_key, -1)
if tail_id then
  local tail_key = job_prefix .. tail_id
  local job = redis.call('HMGET', tail_key, 'status', 'hookyard_events', 'data')
  local count = tonumber(job[2])
  if job[1] == 'queued' and count and job[3] and #job[3] < append_below and string.sub(job[3], -#tail) == tail then
    local taken, bytes = {}, #job[3]
    while i <= #parts and count + #taken < max_events and bytes + #parts[i] + 1 <= max_bytes do
      taken[#taken + 1] = parts[i]
      bytes = bytes + #parts[i] + 1
      i = i + 1
    end
    if #taken > 0 then
      count = count + #taken
      redis.call('HSET', tail_key,
        'data', string.sub(job[3], 1, #job[3] - #tail) .. ',' .. table.concat(taken, ',') .. tail,
        'hookyard_events', count, 'description', 'store ' .. count .. ' event(s)')
    end
  end
end
-- The rest: new jobs, each within the same caps (an event larger than max_bytes travels alone).
local k = 0
while i <= #parts do
  local chunk, bytes = {}, #head + #tail
  while i <= #parts and #chunk < max_events and (#chunk == 0 or bytes + #parts[i] + 1 <= max_bytes) do
    chunk[#chunk + 1] = parts[i]
    bytes = bytes + #parts[i] + 1
    i = i + 1
  end
  local id = job_id
  if k > 0 then
    id = job_id .. '-' .. k
  end
  k = k + 1
  redis.call('SADD', queues_key, queue_key)
  redis.call('HSET', job_prefix .. id,
    'status', 'queued', 'created_at', now, 'enqueued_at', now, 'origin', origin,
    'data', head .. table.concat(chunk, ',') .. tail, 'hookyard_events', #chunk,
    'description', 'store ' .. #chunk .. ' event(s)',
    'timeout', timeout, 'result_ttl', 0, 'failure_ttl', failure_ttl,
    'retries_left', retries, 'retry_intervals', intervals,
    'started_at', '', 'ended_at', '', 'last_heartbeat', '', 'worker_name', '', 'group_id', '',
    'success_callback_name', '', 'failure_callback_name', failure_callback, 'stopped_callback_name', '',
    'failure_callback_timeout', callback_timeout)
  redis.call('RPUSH', queue_key, id)
end
result[#result + 1] = complete
result[#result + 1] = run_id
return result
"""

_DATA_HEAD = '["' + STORE_BATCH + '",null,[['
_DATA_TAIL = "]],{}]"
_encode = msgspec.json.Encoder().encode


def rq_timestamp(moment: datetime | None = None) -> str:
    """RQ's own `utcformat`: what its registries and `rq info` parse."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def script_args(queue_name: str, events: Sequence[QueuedEvent], max_job_events: int = MAX_JOB_EVENTS) -> list[Any]:
    """The script's arguments; its answer is one entry per event, then the `complete` flag and `run_id`."""
    job_id = random_bytes(16).hex()
    args: list[Any] = [
        f"rq:queue:{queue_name}",
        "rq:queues",
        STORE_JOB_FAILED,
        job_id,
        rq_timestamp(),
        queue_name,
        _DATA_HEAD,
        _DATA_TAIL,
        JOB_TIMEOUT,
        JOB_RETRIES,
        _encode(JOB_RETRY_INTERVALS),
        STORE_JOB_FAILURE_TTL,
        JOB_KEY_PREFIX,
        max_job_events,
        MAX_JOB_BYTES,
        STORE_JOB_FAILED_TIMEOUT,
        COMPLETE_KEY,
        APPEND_BELOW_BYTES,
    ]
    for event in events:
        args += (FINGERPRINT_KEY.format(source=event.source), event.fingerprint, event.id, _encode(event))
    return args


class QueueUnavailable(Exception):
    """Neither Redis nor the spool took the event: ingest answers 503."""


class NotOnDisk(Exception):
    """Redis took the batch but `WAITAOF` did not confirm its fsync in time: the spool takes it too."""


class EnqueueResult(msgspec.Struct, frozen=True):
    id: str
    duplicate: bool
    spooled: bool = False


class _Pending(msgspec.Struct):
    event: QueuedEvent
    future: asyncio.Future[EnqueueResult]


class EventQueue:
    """The async enqueue path of one API process: group commit, dedup, fsync, spool fallback.

    After a Redis failure, batches go straight to the spool for `REDIS_RETRY_SECONDS`
    (so a stopped Redis costs one socket timeout, not one per batch), and they keep
    going there until this process's spool is drained: a re-delivery of a spooled event
    then meets its first copy, and events reach Redis in the order they were accepted.
    That holds across a restart too: `start` finds a non-empty spool and new events
    queue behind it.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        queue_name: str,
        spool: Spool,
        max_job_events: int = MAX_JOB_EVENTS,
        socket_timeout: float = 2.0,
        memory: FingerprintMemory | None = None,
    ) -> None:
        self._client = client
        self._queue_name = queue_name
        self._max_job_events = max_job_events
        self._spool = spool
        self._script = client.register_script(ENQUEUE_LUA)
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._redis_retry_at = 0.0
        self._spool_first = False
        self.memory = memory
        self._waitaof_ms = max(1, int(min(WAITAOF_TIMEOUT_SECONDS, socket_timeout / 2) * 1000))
        self.fsync = Fsync()
        """What Redis promises about a write (`service.ingest.durability`), re-read every `FSYNC_CHECK_SECONDS`."""

    @property
    def redis_ok(self) -> bool:
        return not self._spool_first and time.monotonic() >= self._redis_retry_at

    async def start(self) -> None:
        """Before the first request: events spooled by an earlier run go first; learn what Redis fsyncs."""
        try:
            self._spool_first = await self._spool.call(self._spool.count) > 0
        except SpoolError as exc:
            log.error("spool_unreadable", error=str(exc))
        await self.check_fsync()

    async def check_fsync(self) -> Fsync:
        """Re-read Redis's version and AOF settings; an unreachable Redis leaves the last answer."""
        try:
            async with asyncio.timeout(self._waitaof_ms / 1000 + 1):
                fsync = await aread(self._client)
        except (redis.exceptions.RedisError, OSError) as exc:
            log.debug("fsync_check_failed", error=type(exc).__name__)
            return self.fsync
        if fsync.risk and fsync.risk != self.fsync.risk:
            log.warning("redis_not_fsyncing", risk=fsync.risk)
        self.fsync = fsync
        return fsync

    async def check_fsync_forever(self, interval: float = FSYNC_CHECK_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.check_fsync()

    async def submit(self, event: QueuedEvent) -> EnqueueResult:
        future: asyncio.Future[EnqueueResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(event, future))
        if self._flusher is None:
            # A fresh context: the flusher serves many requests, so it must not log as the first one.
            self._flusher = asyncio.create_task(self._flush_loop(), context=contextvars.Context())
        return await future

    async def _flush_loop(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:ENQUEUE_BATCH], self._pending[ENQUEUE_BATCH:]
                await self._write(batch)
        finally:
            self._flusher = None

    async def _write(self, batch: list[_Pending]) -> None:
        events = [item.event for item in batch]
        if not self.redis_ok:
            await self._spool_or_fail(batch, "redis unavailable")
            return
        try:
            existing = await self.enqueue(events)
        except NotOnDisk as exc:
            # Redis holds the batch, but not on disk: answer the repeats, spool the new events (fsync'd);
            # the drainer's later run of the script finds their fingerprints and queues nothing twice.
            fresh = [item for item, first_id in zip(batch, exc.args[0], strict=True) if not first_id]
            self._answer([(item, first_id) for item, first_id in zip(batch, exc.args[0], strict=True) if first_id])
            await self._spool_or_fail(fresh, "redis did not confirm the fsync (WAITAOF)")
            return
        except (redis.exceptions.RedisError, OSError) as exc:
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            await self._spool_or_fail(batch, f"{type(exc).__name__}: {exc}")
            return
        except BaseException as exc:  # cancelled or a bug: never leave a request hanging
            _fail(batch, QueueUnavailable(str(exc)))
            raise
        self._answer(list(zip(batch, existing, strict=True)))

    @staticmethod
    def _answer(answered: list[tuple[_Pending, str]]) -> None:
        for item, first_id in answered:
            if not item.future.done():
                item.future.set_result(EnqueueResult(id=first_id or item.event.id, duplicate=bool(first_id)))

    async def enqueue(self, events: Sequence[QueuedEvent]) -> list[str]:
        """Run the script; for each event, '' if queued now or the id it duplicates.

        On Redis >= 7.2 with AOF on, `WAITAOF 1 0` rides in the same round trip; if it reports
        no local fsync, `NotOnDisk` carries the script's answer. While this Redis server's
        fingerprint memory is not known whole, the database is asked too (`fingerprint_memory`)."""
        args = script_args(self._queue_name, events, self._max_job_events)
        if not self.fsync.waitaof:
            raw = await self._script(args=args)
        else:
            async with self._client.pipeline(transaction=False) as pipe:
                await self._script(args=args, client=pipe)
                pipe.execute_command("WAITAOF", 1, 0, self._waitaof_ms)
                raw, (local, _replicas) = await pipe.execute()
            if int(local) < 1:
                raise NotOnDisk([_text(value) for value in raw[:-2]])
        *answer, complete, run_id = [_text(value) for value in raw]
        if not complete and self.memory is not None:
            return await self.memory.resolve(events, answer, run_id)
        return answer

    async def _spool_or_fail(self, batch: list[_Pending], reason: str) -> None:
        if not batch:
            return
        events = [item.event for item in batch]
        try:
            firsts = await self._spool.call(self._spool.put_many, events)
        except SpoolError as exc:
            log.error("spool_failed", error=str(exc), redis_error=reason, events=len(events))
            _fail(batch, QueueUnavailable("queue and spool unavailable"))
            return
        except BaseException as exc:
            _fail(batch, QueueUnavailable(str(exc)))
            raise
        self._spool_first = True
        log.warning(
            "spooled",
            reason=reason,
            events=len(events),
            event_ids=[e.id for e in events[:10]],
            request_ids=[e.request_id for e in events[:10]],
        )
        if self.memory is not None:  # stored before Redis went away, or before it forgot?
            firsts = await self.memory.look_up(events, firsts)
        for item, first_id in zip(batch, firsts, strict=True):
            if not item.future.done():
                item.future.set_result(
                    EnqueueResult(id=first_id or item.event.id, duplicate=bool(first_id), spooled=True)
                )

    async def drain_spool(self, deadline: float | None = None) -> int:
        """Move spooled events into Redis, oldest first, until the spool is empty (or `deadline`,
        a `time.monotonic()` value, passes); returns how many moved."""
        moved = 0
        while deadline is None or time.monotonic() < deadline:
            rows = await self._spool.call(self._spool.peek, ENQUEUE_BATCH)
            if not rows:
                self._spool_first = False
                return moved
            await self.enqueue([event for _, event in rows])
            await self._spool.call(self._spool.delete_through, rows[-1][0])
            moved += len(rows)
            log.info("spool_drained", events=len(rows), event_ids=[event.id for _, event in rows[:10]])
        return moved

    async def drain_forever(self, interval: float = SPOOL_DRAIN_SECONDS) -> None:
        """Background task: every `interval` s, move what the spool holds into Redis; never dies."""
        while True:
            await asyncio.sleep(interval)
            await self.drain_once()

    async def drain_once(self, deadline: float | None = None) -> bool:
        """One drain attempt, every error logged and absorbed; True when the spool was left empty."""
        try:
            if self._spool_first or await self._spool.call(self._spool.count) > 0:
                await self.drain_spool(deadline)
                self._redis_retry_at = 0.0
            return not self._spool_first
        except (redis.exceptions.RedisError, OSError, NotOnDisk) as exc:
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            log.debug("spool_drain_waiting", error=type(exc).__name__)
        except SpoolError as exc:
            log.error("spool_unreadable", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the drainer must outlive any one bad batch
            log.error("spool_drain_failed", error=f"{type(exc).__name__}: {exc}")
        return False

    async def drain_before_exit(self, seconds: float = SPOOL_SHUTDOWN_SECONDS) -> None:
        """On shutdown: keep draining (Redis may be coming back) until the spool is empty or `seconds` pass."""
        deadline = time.monotonic() + seconds
        try:
            if await self._spool.call(self._spool.count) == 0:
                return
        except SpoolError:
            return
        log.info("spool_draining_before_exit", seconds=seconds)
        while True:
            if await self.drain_once(deadline):
                log.info("spool_empty_at_exit")
                return
            if time.monotonic() >= deadline:
                left = await self._spool.call(self._spool.count)
                log.warning("spool_left_at_exit", events=left, path=str(self._spool.path))
                return
            await asyncio.sleep(min(SPOOL_DRAIN_SECONDS, max(0.0, deadline - time.monotonic())))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fail(batch: list[_Pending], error: Exception) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(error)
