"""Leases: renewal while a group runs, suspects alone, no stolen live lease, give-back after a crash."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from schemas.tables import DeliveryRow
from tests.conftest import Config, Worker, enqueue_events, gxm_body
from tests.workers.rows import delivery_statuses, queued
from workers import lease
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
        held = store_events(
            session, [queued(n) for n in range(3)], registry, 5, 60.0
        )
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
