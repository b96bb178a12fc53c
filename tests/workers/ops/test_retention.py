"""`purge`: only old events go, in batches, beside live ingest, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from schemas.tables import DeliveryRow, EventRow
from tests.workers.rows import event_row, store, unique_source
from workers.ops.fingerprints import FINGERPRINT_KEY
from workers.ops.retention import parse_duration, purge

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=100)
NEW = NOW - timedelta(days=1)


def _stored(engine: Engine, source: str, received_at: datetime, count: int, client: redis.Redis) -> list[str]:
    """Store `count` events the way a worker does (row + deliveries) and record their fingerprints."""
    ids = []
    with Session(engine) as session, session.begin():
        for _ in range(count):
            event = store(session, event_row(source, received_at))
            client.hset(FINGERPRINT_KEY.format(source=source), event.fingerprint, event.id)
            ids.append(event.id)
    return ids


def _event_ids(engine: Engine, source: str) -> set[str]:
    with Session(engine) as session:
        return set(session.scalars(select(EventRow.id).where(EventRow.source == source)))


def _fingerprint_owners(client: redis.Redis, source: str) -> set[str]:
    return {value.decode() for value in client.hvals(FINGERPRINT_KEY.format(source=source))}


def test_purge_deletes_old_events_their_deliveries_and_fingerprints(engine, redis_client):
    source = unique_source()
    old = _stored(engine, source, OLD, 5, redis_client)
    new = _stored(engine, source, NEW, 3, redis_client)

    report = purge(engine, redis_client, timedelta(days=90), batch_size=2, now=NOW)

    assert (report.events, report.deliveries, report.fingerprints) == (5, 10, 5)
    assert report.batches == 3  # 2 + 2 + 1
    assert report.cutoff == NOW - timedelta(days=90)
    assert _event_ids(engine, source) == set(new)
    assert _fingerprint_owners(redis_client, source) == set(new)
    with Session(engine) as session:
        orphans = session.scalar(select(func.count()).where(DeliveryRow.event_id.in_(old)))
        kept = session.scalar(select(func.count()).where(DeliveryRow.event_id.in_(new)))
    assert (orphans, kept) == (0, 6)


def test_purge_keeps_a_fingerprint_that_now_names_a_newer_event(engine, redis_client):
    source = unique_source()
    (old_id,) = _stored(engine, source, OLD, 1, redis_client)
    key = FINGERPRINT_KEY.format(source=source)
    (fingerprint,) = redis_client.hkeys(key)
    redis_client.hset(key, fingerprint, "a-newer-event-id")

    report = purge(engine, redis_client, timedelta(days=90), now=NOW)

    assert report.events == 1
    assert report.fingerprints == 0
    assert redis_client.hget(key, fingerprint) == b"a-newer-event-id"
    assert old_id not in _event_ids(engine, source)


def test_dry_run_counts_and_deletes_nothing(engine, redis_client):
    source = unique_source()
    old = _stored(engine, source, OLD, 4, redis_client)
    new = _stored(engine, source, NEW, 2, redis_client)

    report = purge(engine, redis_client, timedelta(days=90), now=NOW, dry_run=True)

    assert (report.events, report.deliveries, report.dry_run) == (4, 8, True)
    assert _event_ids(engine, source) == set(old) | set(new)
    assert _fingerprint_owners(redis_client, source) == set(old) | set(new)


def test_nothing_old_enough_is_a_clean_no_op(engine, redis_client):
    source = unique_source()
    new = _stored(engine, source, NEW, 2, redis_client)

    report = purge(engine, redis_client, timedelta(days=90), now=NOW)

    assert (report.events, report.deliveries, report.batches) == (0, 0, 0)
    assert _event_ids(engine, source) == set(new)


def test_purge_runs_beside_ingest_without_errors_or_losing_new_events(engine, redis_client):
    source = unique_source()
    old = _stored(engine, source, OLD, 1500, redis_client)
    inserted: list[str] = []
    inserted_at: list[float] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def ingest() -> None:
        client = redis.Redis(connection_pool=redis_client.connection_pool)
        try:
            while not stop.is_set():
                inserted.extend(_stored(engine, source, datetime.now(UTC), 1, client))
                inserted_at.append(time.monotonic())
        except BaseException as exc:  # the test reports it below
            errors.append(exc)

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        while len(inserted) < 5 and writer.is_alive():
            time.sleep(0.01)
        started = time.monotonic()
        report = purge(engine, redis_client, timedelta(days=90), batch_size=25)
        finished = time.monotonic()
        time.sleep(0.05)
    finally:
        stop.set()
        writer.join(timeout=30)

    assert not errors, errors
    assert any(started <= moment <= finished for moment in inserted_at), "ingest never overlapped purge"
    assert report.events == 1500
    assert report.batches == 60
    assert _event_ids(engine, source) == set(inserted)
    assert _fingerprint_owners(redis_client, source) == set(inserted)
    assert not set(old) & _event_ids(engine, source)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("3600s", timedelta(hours=1)),
        ("2w", timedelta(days=14)),
    ],
)
def test_durations_operators_type_are_understood(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "-1d", "1.5h", "90 days", "0d", "1y"])
def test_bad_durations_are_refused_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="like 90d, 12h, 30m or 3600s"):
        parse_duration(text)


def test_purge_prunes_the_rejection_ledger_and_finished_replays(engine, redis_client):
    from sqlalchemy import insert  # noqa: PLC0415

    from schemas.tables import RejectionRow, ReplayRow  # noqa: PLC0415

    def rejection(at: datetime) -> dict[str, object]:
        return {
            "source": "gxm",
            "status": 401,
            "code": "ERR:MSG:SIGNATURE",
            "client_ip": "203.0.113.7",
            "request_id": "r",
            "received_at": at,
            "count": 2,
        }

    def replay(replay_id: str, finished: datetime | None) -> dict[str, object]:
        return {
            "id": replay_id,
            "status": "done" if finished else "running",
            "filter": "{}",
            "events": 1,
            "deliveries": 1,
            "queued": 1,
            "position": 0,
            "runner": "r",
            "created_by": "admin",
            "request_id": "r",
            "created_at": OLD,
            "updated_at": OLD,
            "finished_at": finished,
        }

    with engine.begin() as conn:
        conn.execute(insert(RejectionRow), [rejection(OLD), rejection(OLD), rejection(NEW)])
        conn.execute(insert(ReplayRow), [replay("old-done", OLD), replay("old-running", None), replay("new", NEW)])

    dry = purge(engine, redis_client, timedelta(days=90), now=NOW, dry_run=True)
    assert (dry.rejections, dry.replays) == (2, 1)
    report = purge(engine, redis_client, timedelta(days=90), batch_size=1, now=NOW)
    assert (report.rejections, report.replays) == (2, 1)
    with Session(engine) as session:
        assert [r.received_at for r in session.scalars(select(RejectionRow))] == [NEW]
        assert sorted(session.scalars(select(ReplayRow.id))) == ["new", "old-running"]
