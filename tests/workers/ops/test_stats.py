"""`collect_stats`: the /v1/stats numbers from real SQL and a real RQ queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy.orm import Session

from schemas.api_stats import Stats
from schemas.migrate import upgrade
from schemas.settings import DatabaseSettings
from schemas.tables import DeliveryStatus, EventStatus
from tests.workers.rows import delivery_row, event_row, unique_source
from workers.ops.stats import collect_stats
from workers.shared.connections import make_engine

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)


def _seed(engine):
    source = unique_source()
    with Session(engine) as session, session.begin():
        recent = [
            event_row(source, NOW - timedelta(hours=1), action="LOCATION:CREATED"),
            event_row(source, NOW - timedelta(hours=2), action="LOCATION:CREATED", status=EventStatus.FAILED),
            event_row(source, NOW - timedelta(hours=3), action="LOCATION:DELETED", status=EventStatus.STORED),
        ]
        stale = event_row(source, NOW - timedelta(days=3), action="USER:UPDATED")
        session.add_all([*recent, stale])
        session.flush()
        session.add_all(
            [
                delivery_row(recent[0], "crm", NOW - timedelta(hours=1)),
                delivery_row(recent[1], "crm", NOW - timedelta(minutes=90), DeliveryStatus.DEAD),
                delivery_row(recent[1], "audit", NOW - timedelta(minutes=30), DeliveryStatus.RETRYING),
                # Oldest open delivery, on an event older than `since`: still counted as pending age.
                delivery_row(stale, "crm", NOW - timedelta(days=3), DeliveryStatus.PENDING),
            ]
        )


def test_counts_events_since_deliveries_and_oldest_pending(engine, redis_client):
    _seed(engine)
    queue = f"q-{uuid.uuid4().hex[:8]}"

    stats = collect_stats(engine, redis_client, queue, SINCE, now=NOW)

    assert stats.since == SINCE
    assert stats.events.total == 3
    assert stats.events.by_action == {"LOCATION:CREATED": 2, "LOCATION:DELETED": 1}
    assert stats.events.by_status == {"stored": 1, "processing": 0, "processed": 1, "failed": 1}
    assert stats.deliveries.by_status == {"pending": 0, "retrying": 1, "succeeded": 1, "dead": 1, "skipped": 0}
    assert stats.oldest_pending_seconds == pytest.approx(timedelta(days=3).total_seconds())
    assert stats.queues == {queue: 0, f"{queue}:scheduled": 0, f"{queue}:failed": 0}


def test_takes_a_session_as_well_as_an_engine(engine, redis_client):
    _seed(engine)
    with Session(engine) as session:
        stats = collect_stats(session, redis_client, "unused", SINCE, now=NOW)
    assert stats.events.total == 3


def test_queue_depths_are_rq_waiting_scheduled_and_failed_jobs(sqlite_url, redis_client):
    engine = make_engine(DatabaseSettings(url=sqlite_url))
    upgrade(engine)
    name = f"q-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, connection=redis_client)
    for _ in range(3):
        queue.enqueue("os.getcwd")
    queue.enqueue_in(timedelta(minutes=10), "os.getcwd")
    failed = queue.enqueue("os.getcwd")
    queue.remove(failed)
    FailedJobRegistry(queue=queue).add(failed, ttl=600, exc_string="boom")
    try:
        stats = collect_stats(engine, redis_client, name, SINCE, now=NOW)
    finally:
        queue.delete(delete_jobs=True)
        engine.dispose()

    assert stats.queues == {name: 3, f"{name}:scheduled": 1, f"{name}:failed": 1}
    assert stats.events.total == 0
    assert stats.oldest_pending_seconds is None


def test_json_is_the_v1_stats_shape(engine, redis_client):
    _seed(engine)
    stats = collect_stats(engine, redis_client, "hookyard-stats-test", SINCE, now=NOW)

    body = msgspec.json.decode(msgspec.json.encode(stats))

    assert set(body) == {"since", "events", "deliveries", "queues", "oldest_pending_seconds"}
    assert set(body["events"]) == {"total", "by_action", "by_status"}
    assert body["since"] == "2026-11-22T08:00:00Z"
    assert msgspec.json.decode(msgspec.json.encode(stats), type=Stats) == stats


def test_naive_since_is_refused(engine, redis_client):
    with pytest.raises(ValueError, match="timezone-aware"):
        collect_stats(engine, redis_client, "q", datetime(2026, 1, 1))
