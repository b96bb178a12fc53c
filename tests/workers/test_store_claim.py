"""Storing a batch claims its deliveries in the same commit; a re-run job finishes what is left."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import select, update

from schemas.ids import new_event_id
from schemas.tables import DeliveryRow, EventRow
from schemas.wire import QueuedEvent
from tests.conftest import Worker, gxm_body
from workers.context import set_context
from workers.event import Event
from workers.jobs import store_batch
from workers.registry import Registry
from workers.store import store_events


def queued(n: int) -> QueuedEvent:
    body = gxm_body(payload={"n": n}, sent_at=1_700_000_000 + n)
    return QueuedEvent(
        id=new_event_id(),
        source="gxm",
        fingerprint=hashlib.sha256(body).hexdigest()[:32],
        received_at_us=1_700_000_000_000_000,
        request_id=f"r{n}",
        body=body.decode(),
    )


def as_job_arg(event: QueuedEvent) -> object:
    """An event as the job carries it (JSON, array-like)."""
    return msgspec.json.decode(msgspec.json.encode(event))


def test_batch_is_stored_claimed_run_and_recorded(worker: Worker, registry: Registry) -> None:
    seen: list[Event] = []
    registry.handler("*", name="ok")(seen.append)

    @registry.handler("LOCATION:*", name="flaky")
    def flaky(event: Event) -> None:
        raise RuntimeError("try later")

    events = [queued(1), queued(2)]
    set_context(worker.context)
    store_batch([as_job_arg(e) for e in events])

    assert sorted(e.id for e in seen) == sorted(e.id for e in events)
    assert {e.attempt for e in seen} == {1}
    with worker.context.sessions() as session:
        rows = {(d.event_id, d.handler): d for d in session.scalars(select(DeliveryRow))}
        statuses = set(session.scalars(select(EventRow.status)))
    assert len(rows) == 4
    assert {(d.handler, d.status, d.attempts) for d in rows.values()} == {
        ("ok", "succeeded", 1),
        ("flaky", "retrying", 1),
    }
    assert all(d.lease_until is None for d in rows.values())
    assert statuses == {"processing"}


def test_rerun_of_a_job_whose_worker_died_runs_the_open_deliveries_once(worker: Worker, registry: Registry) -> None:
    seen: list[Event] = []
    registry.handler("*", name="ok")(seen.append)
    event = queued(3)
    context = worker.context
    with context.sessions() as session, session.begin():  # the first run stored and claimed, then died
        stored = store_events(session, [event], registry, 5, datetime.now(UTC) + timedelta(seconds=30))
    assert [c.attempts for c in stored.claimed] == [1]
    with context.sessions() as session, session.begin():  # its lease runs out
        session.execute(update(DeliveryRow).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))

    set_context(context)
    store_batch([as_job_arg(event)])

    assert [e.attempt for e in seen] == [2]
    with context.sessions() as session:
        deliveries = list(session.scalars(select(DeliveryRow)))
        status = session.scalar(select(EventRow.status))
    assert [(d.status, d.attempts) for d in deliveries] == [("succeeded", 2)]
    assert status == "processed"


@pytest.mark.parametrize("count", [0, 1])
def test_nothing_matches(worker: Worker, registry: Registry, count: int) -> None:
    events = [queued(10 + i) for i in range(count)]
    set_context(worker.context)
    assert store_batch([as_job_arg(e) for e in events]) == count
    with worker.context.sessions() as session:
        assert list(session.scalars(select(EventRow.status))) == ["stored"] * count
