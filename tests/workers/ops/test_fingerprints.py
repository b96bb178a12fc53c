"""`rebuild`: Redis's fingerprint memory made whole from the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.workers.rows import event_row, store, unique_source
from workers.ops.fingerprints import COMPLETE_KEY, FINGERPRINT_KEY, REBUILD_LOCK_KEY, rebuild, stored_ids

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _store(engine: Engine, source: str, count: int) -> dict[str, str]:
    """fingerprint -> id of `count` stored events."""
    with Session(engine) as session, session.begin():
        events = [store(session, event_row(source, NOW)) for _ in range(count)]
        return {event.fingerprint: event.id for event in events}


def test_rebuild_copies_every_stored_fingerprint_and_the_database_wins(engine: Engine, redis_client: redis.Redis):
    source = unique_source()
    stored = _store(engine, source, 12)
    key = FINGERPRINT_KEY.format(source=source)
    wrong = next(iter(stored))
    redis_client.hset(key, wrong, "an-id-the-database-refused")
    redis_client.hset(key, "not-stored", "an-event-in-flight")  # queued, not stored yet: left alone

    assert rebuild(engine, redis_client, "run-1") is True

    memory = {field.decode(): value.decode() for field, value in redis_client.hgetall(key).items()}
    assert memory == {**stored, "not-stored": "an-event-in-flight"}
    assert redis_client.get(COMPLETE_KEY) == b"run-1"
    assert redis_client.get(REBUILD_LOCK_KEY) is None, "the lock is released"
    assert stored_ids(engine, [(source, wrong), (source, "not-stored")]) == {(source, wrong): stored[wrong]}


def test_one_rebuild_at_a_time(engine: Engine, redis_client: redis.Redis):
    redis_client.set(REBUILD_LOCK_KEY, "another-process")
    assert rebuild(engine, redis_client, "run-2") is False
    assert redis_client.get(COMPLETE_KEY) is None
    assert redis_client.get(REBUILD_LOCK_KEY) == b"another-process", "someone else's lock is never released"
