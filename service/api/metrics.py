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
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis.asyncio as aioredis
import structlog
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from schemas.tables import DeliveryRow, DeliveryStatus
from workers.handler_metrics import (
    BUCKETS,
    DURATION_BUCKET_KEY,
    DURATION_COUNT_KEY,
    DURATION_SUM_KEY,
    OUTCOMES_KEY,
    SEPARATOR,
)

log = structlog.get_logger("hookyard.api.metrics")

REFRESH_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 1.0
DB_TIMEOUT_SECONDS = 5.0


@dataclass
class Snapshot:
    queues: dict[str, int] | None = None
    """`<queue>`: waiting jobs; `<queue>:scheduled`: retries waiting in RQ's scheduler."""
    dead: int | None = None
    oldest_pending_seconds: float | None = None
    database_read: bool = False
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[str, tuple[dict[str, int], int, float]] = field(default_factory=dict)
    """handler -> (bucket label -> count in that bucket only, count, sum)."""


async def read_redis(client: aioredis.Redis, queue: str) -> Snapshot:
    async with client.pipeline(transaction=False) as pipe:
        pipe.llen(f"rq:queue:{queue}")
        pipe.zcard(f"rq:scheduled:{queue}")
        pipe.hgetall(OUTCOMES_KEY)
        pipe.hgetall(DURATION_BUCKET_KEY)
        pipe.hgetall(DURATION_COUNT_KEY)
        pipe.hgetall(DURATION_SUM_KEY)
        waiting, scheduled, outcomes, buckets, counts, sums = await pipe.execute()
    snapshot = Snapshot(queues={queue: int(waiting), f"{queue}:scheduled": int(scheduled)})
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
    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self._lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        with self._lock:
            snap = self.snapshot
        if snap.queues is not None:
            depth = GaugeMetricFamily("hookyard_queue_depth", "Jobs waiting in the RQ queue", labels=["queue"])
            for name, value in sorted(snap.queues.items()):
                depth.add_metric([name], value)
            yield depth
        if snap.database_read:
            yield GaugeMetricFamily("hookyard_deliveries_dead", "Deliveries that are dead", value=snap.dead or 0)
            yield GaugeMetricFamily(
                "hookyard_oldest_pending_seconds",
                "Age of the oldest pending or retrying delivery (0 when there is none)",
                value=snap.oldest_pending_seconds or 0.0,
            )
        if snap.queues is not None:
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


def install_collector() -> HookyardCollector:
    """Register the collector with prometheus_client's default registry, once per process."""
    global _installed
    if not _installed:
        REGISTRY.register(COLLECTOR)
        _installed = True
    return COLLECTOR


async def refresh_once(client: aioredis.Redis, engine: Engine, queue: str) -> Snapshot:
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
    return snapshot


async def refresh_forever(client: aioredis.Redis, engine: Engine, queue: str, stop: asyncio.Event) -> None:
    """Refresh the snapshot until `stop` is set (checked between refreshes, not only by cancelling)."""
    collector = install_collector()
    while not stop.is_set():
        collector.update(await refresh_once(client, engine, queue))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REFRESH_SECONDS):
                await stop.wait()
