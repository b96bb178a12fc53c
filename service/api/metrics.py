"""Queue, delivery and handler metrics on the API's `/metrics`.

A scrape must not touch Redis or the database on the event loop, so a
background task refreshes a snapshot every `REFRESH_SECONDS` (Redis reads
with a short timeout, two small indexed queries in a thread), and the
collector only reads that snapshot. A part that could not be read is left
out of the scrape rather than reported as zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import platform
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis.asyncio as aioredis
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from schemas.tables import DeliveryRow, DeliveryStatus
from service.ingest.enqueue import JOB_KEY_PREFIX
from service.ingest.spool import Spool
from service.metrics import scrape_registry
from service.version import version
from workers.handler_metrics import (
    BUCKETS,
    DURATION_BUCKET_KEY,
    DURATION_COUNT_KEY,
    DURATION_SUM_KEY,
    OUTCOMES_KEY,
    SEPARATOR,
)

log = structlog.get_logger("hookyard.api.metrics")

BUILD_LABELS = [version(), platform.python_version(), importlib.metadata.version("rq")]
REFRESH_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 1.0
DB_TIMEOUT_SECONDS = 5.0


QUEUE_SCAN_JOBS = 10_000
"""Most waiting jobs one refresh reads to count their events; past that the count is extrapolated."""

# Events waiting: a store job says how many it holds (`hookyard_events`, written by ingest's Lua);
# any other job (a retry, a replay, a sweep) counts as one. Bounded: it reads at most ARGV[2] jobs.
COUNT_EVENTS_LUA = """
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local events = 0
for _, id in ipairs(ids) do
  events = events + (tonumber(redis.call('HGET', ARGV[1] .. id, 'hookyard_events')) or 1)
end
return {redis.call('LLEN', KEYS[1]), #ids, events}
"""


@dataclass
class Snapshot:
    queue_jobs: dict[str, int] | None = None
    """state (`waiting`: in the queue; `scheduled`: retries waiting in RQ's scheduler) -> jobs."""
    queue_events: int | None = None
    """Events waiting in the queue: what a worker has to store, and what KEDA scales on."""
    dead: int | None = None
    oldest_pending_seconds: float | None = None
    database_read: bool = False
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[str, tuple[dict[str, int], int, float]] = field(default_factory=dict)
    """handler -> (bucket label -> count in that bucket only, count, sum)."""
    spool: tuple[int, int] | None = None
    """(events waiting in this host's spool, quarantined rows): the spool file is per volume, not per process."""


def waiting_events(jobs: int, scanned: int, events: int) -> int:
    """Events in the queue: counted over the first `scanned` jobs, the rest at the same average."""
    if scanned == 0 or jobs <= scanned:
        return events
    return round(events * jobs / scanned)


async def read_redis(client: aioredis.Redis, queue: str) -> Snapshot:
    queue_key = f"rq:queue:{queue}"
    async with client.pipeline(transaction=False) as pipe:
        pipe.eval(COUNT_EVENTS_LUA, 1, queue_key, JOB_KEY_PREFIX, QUEUE_SCAN_JOBS)
        pipe.zcard(f"rq:scheduled:{queue}")
        pipe.hgetall(OUTCOMES_KEY)
        pipe.hgetall(DURATION_BUCKET_KEY)
        pipe.hgetall(DURATION_COUNT_KEY)
        pipe.hgetall(DURATION_SUM_KEY)
        (waiting, scanned, events), scheduled, outcomes, buckets, counts, sums = await pipe.execute()
    snapshot = Snapshot(
        queue_jobs={"waiting": int(waiting), "scheduled": int(scheduled)},
        queue_events=waiting_events(int(waiting), int(scanned), int(events)),
    )
    for raw, value in outcomes.items():
        handler, _, outcome = raw.decode().rpartition(SEPARATOR)
        snapshot.outcomes[(handler, outcome)] = int(value)
    for raw, value in counts.items():
        handler = raw.decode()
        snapshot.durations[handler] = ({}, int(value), float(sums.get(raw, 0.0)))
    for raw, value in buckets.items():
        handler, _, label = raw.decode().rpartition(SEPARATOR)
        if handler in snapshot.durations:
            snapshot.durations[handler][0][label] = int(value)
    return snapshot


def read_database(engine: Engine) -> tuple[int, float | None]:
    """Dead deliveries (index on status) and the age of the oldest open one."""
    with engine.connect() as connection:
        dead = connection.execute(
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == DeliveryStatus.DEAD)
        ).scalar_one()
        oldest = connection.execute(
            select(func.min(DeliveryRow.created_at)).where(DeliveryRow.status.in_(DeliveryStatus.OPEN))
        ).scalar_one()
    if oldest is None:
        return int(dead), None
    if isinstance(oldest, str):  # SQLite's min() bypasses the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(dead), max(0.0, (datetime.now(UTC) - oldest).total_seconds())


class HookyardCollector(Collector):
    def __init__(self, queue: str = "hookyard") -> None:
        self.snapshot = Snapshot()
        self.queue = queue
        self._lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        with self._lock:
            snap = self.snapshot
        info = GaugeMetricFamily(
            "hookyard_build_info", "The running hookyard's version (always 1)", labels=["version", "python", "rq"]
        )
        info.add_metric(BUILD_LABELS, 1)
        yield info
        if snap.queue_jobs is not None and snap.queue_events is not None:
            events = GaugeMetricFamily(
                "hookyard_queue_events",
                "Events waiting in the RQ queue (a store job holds up to [worker] batch_size; other jobs count 1)",
                labels=["queue"],
            )
            events.add_metric([self.queue], snap.queue_events)
            yield events
            jobs = GaugeMetricFamily("hookyard_queue_jobs", "RQ jobs by state", labels=["queue", "state"])
            for state, value in sorted(snap.queue_jobs.items()):
                jobs.add_metric([self.queue, state], value)
            yield jobs
        if snap.spool is not None:
            yield GaugeMetricFamily(
                "hookyard_spool_events", "Acknowledged events waiting in the local spool for Redis", value=snap.spool[0]
            )
            yield GaugeMetricFamily(
                "hookyard_spool_quarantined",
                "Acknowledged spool rows that no longer decode, set aside for `hookyard spool redrive`",
                value=snap.spool[1],
            )
        if snap.database_read:
            yield GaugeMetricFamily("hookyard_deliveries_dead", "Deliveries that are dead", value=snap.dead or 0)
            yield GaugeMetricFamily(
                "hookyard_oldest_pending_seconds",
                "Age of the oldest pending or retrying delivery (0 when there is none)",
                value=snap.oldest_pending_seconds or 0.0,
            )
        if snap.queue_jobs is not None:
            outcomes = CounterMetricFamily(
                "hookyard_deliveries", "Delivery attempts by handler and outcome", labels=["handler", "outcome"]
            )
            for (handler, outcome), value in sorted(snap.outcomes.items()):
                outcomes.add_metric([handler, outcome], value)
            yield outcomes
            durations = HistogramMetricFamily(
                "hookyard_handler_duration_seconds", "Time handlers took per attempt", labels=["handler"]
            )
            for handler, (buckets, count, total) in sorted(snap.durations.items()):
                cumulative, running = [], 0
                for bound in BUCKETS:
                    label = "+Inf" if bound == float("inf") else repr(bound)
                    running += buckets.get(label, 0)
                    cumulative.append((label, running))
                cumulative[-1] = ("+Inf", count)
                durations.add_metric([handler], cumulative, total)
            yield durations


COLLECTOR = HookyardCollector()
_installed = False


def install_collector(queue: str = "hookyard") -> HookyardCollector:
    """Register the collector with the registry `/metrics` shows, once per process."""
    global _installed
    COLLECTOR.queue = queue
    if not _installed:
        scrape_registry().register(COLLECTOR)
        _installed = True
    return COLLECTOR


async def refresh_once(client: aioredis.Redis, engine: Engine, queue: str, spool: Spool | None = None) -> Snapshot:
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            snapshot = await read_redis(client, queue)
    except Exception as exc:  # noqa: BLE001 - Redis away: leave its metrics out of the scrape
        log.debug("metrics_redis_unavailable", error=type(exc).__name__)
        snapshot = Snapshot()
    try:
        async with asyncio.timeout(DB_TIMEOUT_SECONDS):
            dead, oldest = await asyncio.to_thread(read_database, engine)
        snapshot.dead, snapshot.oldest_pending_seconds, snapshot.database_read = dead, oldest, True
    except Exception as exc:  # noqa: BLE001 - database away: leave its metrics out
        log.debug("metrics_database_unavailable", error=type(exc).__name__)
    if spool is not None:
        try:
            snapshot.spool = (await spool.call(spool.count), await spool.call(spool.quarantined))
        except Exception as exc:  # noqa: BLE001 - spool unreadable: /health/ready says so; leave it out
            log.debug("metrics_spool_unavailable", error=type(exc).__name__)
    return snapshot


async def refresh_forever(
    client: aioredis.Redis, engine: Engine, queue: str, stop: asyncio.Event, spool: Spool | None = None
) -> None:
    """Refresh the snapshot until `stop` is set (checked between refreshes, not only by cancelling)."""
    collector = install_collector(queue)
    while not stop.is_set():
        collector.update(await refresh_once(client, engine, queue, spool))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REFRESH_SECONDS):
                await stop.wait()
