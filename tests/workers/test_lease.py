"""Leases: renewal while a group runs, suspects alone, no stolen live lease, give-back after a crash."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text, update

from schemas.tables import DeliveryRow
from tests.conftest import POSTGRES_ENV, Config, Worker, enqueue_events, gxm_body, wait_for
from tests.workers.rows import delivery_statuses, queued
from workers import lease, store
from workers.context import WorkerContext
from workers.event import Event
from workers.lease import find_stranded, give_back
from workers.progress import Progress, never_started
from workers.registry import Registry
from workers.store import store_events


def test_a_slow_group_keeps_its_finished_deliveries_leased(config: Config, worker: Worker, registry: Registry) -> None:
    """Outcomes are written at the end of a group: the sweeper must not see finished ones as abandoned."""
    runs: list[str] = []
    for name in ("a", "b", "c"):

        def slow(event: Event, name: str = name) -> None:
            runs.append(name)
            time.sleep(1.5)

        registry.handler("*", name=name, timeout_seconds=2)(slow)

    stranded: list[int] = []
    done = threading.Event()

    def sweep() -> None:
        while not done.is_set():
            stranded.extend(find_stranded(worker.context))
            time.sleep(0.2)

    sweeper = threading.Thread(target=sweep)
    [event_id] = enqueue_events(config, gxm_body())
    sweeper.start()
    try:
        worker.drain()
    finally:
        done.set()
        sweeper.join()
    assert stranded == []
    assert sorted(runs) == ["a", "b", "c"]
    assert delivery_statuses(config, event_id) == {"a": ("succeeded", 1), "b": ("succeeded", 1), "c": ("succeeded", 1)}


def test_suspects_run_alone_fewest_attempts_first_and_a_live_lease_is_never_taken(
    worker: Worker, registry: Registry
) -> None:
    """A group that died ran in id order: its never-started deliveries run before the culprit, singly."""
    registry.handler("*", name="ok")(lambda event: None)
    context = worker.context
    with context.connections.transaction() as session:
        held = store_events(session, [queued(n) for n in range(3)], registry, 5, 60.0)
        unclaimed = store_events(session, [queued(n) for n in range(3, 5)], registry, 5)
    first, culprit, last = (c.id for c in held.claimed)
    with context.connections.transaction() as session:  # the culprit already crashed a worker once more
        session.execute(update(DeliveryRow).where(DeliveryRow.id == culprit).values(attempts=2))
    ids = [first, culprit, last] + [c.id for c in unclaimed.claimed]

    fresh, suspect = lease.partition(context, ids)

    assert fresh == sorted(c.id for c in unclaimed.claimed)
    assert suspect == [last, first, culprit]
    assert lease.claim(context, [first])[0] == []  # its lease still runs: its worker may be alive
    with context.connections.transaction() as session:
        session.execute(update(DeliveryRow).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    [claimed], events = lease.claim(context, [first])
    assert (claimed.id, claimed.attempts) == (first, 2)
    assert list(events) == [claimed.event_id]
    with context.sessions() as session:
        lease_until = session.scalar(select(DeliveryRow.lease_until).where(DeliveryRow.id == first))
    assert lease_until is not None
    assert lease_until > datetime.now(UTC)


def test_only_the_running_delivery_keeps_its_attempt(worker: Worker, registry: Registry, tmp_path: Path) -> None:
    registry.handler("*", name="ok")(lambda event: None)
    context = worker.context
    with context.sessions() as session, session.begin():
        stored = store_events(session, [queued(n) for n in range(4)], registry, 5, 60.0)
    claimed = [(c.id, c.attempts) for c in stored.claimed]
    progress = Progress(tmp_path / "progress")
    progress.claimed(claimed)
    progress.starting(1)  # ...and the process dies here

    left = never_started(tmp_path / "progress")

    assert left == claimed[2:]
    assert give_back(context.engine, left) == 2
    assert give_back(context.engine, left) == 0  # only once: the attempts no longer match
    with context.sessions() as session:
        found = [
            (d.attempts, d.lease_until is None) for d in session.scalars(select(DeliveryRow).order_by(DeliveryRow.id))
        ]
    assert found == [(1, False), (1, False), (0, True), (0, True)]


class _Skewed:
    """A worker host whose clock is off by `offset` (the test hook: only `datetime.now` moves)."""

    offset = timedelta(0)

    @classmethod
    def now(cls, tz: object = None) -> datetime:
        return datetime.now(UTC) + cls.offset

    @staticmethod
    def fromtimestamp(value: float, tz: object = None) -> datetime:
        return datetime.fromtimestamp(value, UTC)


def _skew(monkeypatch: pytest.MonkeyPatch, offset: timedelta) -> None:
    _Skewed.offset = offset
    for module in ("workers.lease", "workers.store", "workers.record", "workers.deliver"):
        monkeypatch.setattr(f"{module}.datetime", _Skewed)


def _db_now(context: WorkerContext) -> datetime:
    with context.sessions() as session:
        now: datetime | None = session.scalar(select(lease.db_now()))
    assert now is not None
    return now


def test_leases_are_set_and_judged_by_the_databases_clock(
    worker: Worker, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose clock is an hour behind stores a live lease; one an hour ahead neither sweeps nor takes it."""
    registry.handler("*", name="ok", timeout_seconds=30)(lambda event: None)
    context = worker.context

    _skew(monkeypatch, -timedelta(hours=1))
    stored = store.store_and_claim(context, [queued(1)])
    [held] = stored.claimed
    with context.sessions() as session:
        lease_until = session.scalar(select(DeliveryRow.lease_until).where(DeliveryRow.id == held.id))
    assert lease_until is not None
    assert lease_until > _db_now(context) + timedelta(seconds=25)  # a full lease, by the database's clock

    _skew(monkeypatch, timedelta(hours=1))
    assert find_stranded(context) == []
    assert lease.claim(context, [held.id])[0] == []

    with context.connections.transaction() as session:  # the lease runs out, by the database's clock
        session.execute(update(DeliveryRow).values(lease_until=lease.db_now(-1.0)))
    assert find_stranded(context) == [held.id]  # its holder never beat: it is stranded, as before


@pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} not set")
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_heartbeat_renews_a_lease_while_its_outcome_write_waits(
    config: Config, worker: Worker, registry: Registry
) -> None:
    """The outcome write waits on the event's row lock (another writer's roll-up) past the lease: the
    heartbeat keeps renewing it, so it never lapses, and the handler runs once."""
    runs: list[int] = []
    registry.handler("*", name="ok", timeout_seconds=1)(lambda event: runs.append(event.attempt))  # 3 s leases
    context = worker.context
    with context.connections.transaction() as session:
        [delivery] = store_events(session, [queued(1)], registry, 5).claimed
    context.connections.queue_deliveries([delivery.id])

    def lease_ok() -> bool:
        with context.sessions() as session:
            live = DeliveryRow.lease_until > lease.db_now()
            return bool(session.scalar(select(live).where(DeliveryRow.id == delivery.id)))

    engine = create_engine(config.settings.database.url)
    locked = threading.Event()
    seen: list[bool] = []

    def stall() -> None:  # RQ's worker wants the main thread: the lock is held from this one
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.execute(text("select id from events where id = :e for update"), {"e": delivery.event_id})
            locked.set()
            try:
                wait_for(lambda: runs, timeout=20, what="the handler to run")
                time.sleep(6)  # twice the lease
                seen.append(lease_ok())
            finally:
                transaction.commit()

    staller = threading.Thread(target=stall)
    staller.start()
    try:
        assert locked.wait(10)
        worker.drain()
    finally:
        staller.join(timeout=40)
        engine.dispose()
    assert seen == [True], "the lease lapsed while its outcome write waited"
    assert runs == [1]
    assert delivery_statuses(config, delivery.event_id) == {"ok": ("succeeded", 1)}
