"""Storing a batch: idempotent, its deliveries claimed in the same commit; a re-run job finishes what is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql

from schemas.tables import DeliveryRow, EventRow
from schemas.wire import QueuedEvent
from tests.conftest import Config, Worker, enqueue_events, gxm_body, rows
from tests.workers.rows import delivery_statuses, event_status, queued
from workers.context import set_context
from workers.event import Event
from workers.jobs import store_batch
from workers.record import OUTCOME_COLUMNS
from workers.registry import Registry
from workers.store import DELIVERY_COLUMNS, EVENT_COLUMNS, event_row, store_events


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
        stored = store_events(session, [event], registry, 5, 30.0)
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


def test_event_without_handlers_is_stored(config: Config, worker: Worker, registry: Registry) -> None:
    registry.handler("BOOKING:*", name="bookings")(lambda event: None)
    [event_id] = enqueue_events(config, gxm_body("LOCATION:CREATED"))
    worker.drain()
    assert event_status(config, event_id) == "stored"
    assert delivery_statuses(config, event_id) == {}


def test_payload_text_is_stored_exactly_as_sent(config: Config, worker: Worker, registry: Registry) -> None:
    payload_text = '{ "z": 1, "a": "\\u0000\\u00e9", "n": 1.50 }'
    body = ('{"data": {"sent_at": 1, "action": "LOCATION:CREATED", "payload": ' + payload_text + "}}").encode()
    [event_id] = enqueue_events(config, body)
    worker.drain()
    [(stored_payload, stored_body)] = rows(config, "select payload, body from events where id = :e", e=event_id)
    assert stored_payload == payload_text
    assert stored_body == body.decode()


def test_storing_is_idempotent_when_a_job_runs_twice(config: Config, worker: Worker, registry: Registry) -> None:
    calls: list[str] = []
    registry.handler("*", name="count")(lambda event: calls.append(event.id))
    [event_id] = enqueue_events(config, gxm_body())
    job_ids = worker.context.queue.get_job_ids()
    job = worker.context.queue.fetch_job(job_ids[0])
    assert job is not None
    worker.drain()
    worker.context.queue.enqueue_job(job)  # RQ runs the same job again (e.g. after an abandoned run)
    worker.drain()
    assert rows(config, "select count(*) from events where id = :e", e=event_id) == [(1,)]
    assert calls == [event_id]


_ARRAY_TYPES = {
    "VARCHAR": "varchar",
    "TEXT": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE PRECISION": "float8",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


def _array_type(table: Table, name: str) -> str:
    declared = str(table.c[name].type.compile(dialect=postgresql.dialect())).partition("(")[0]
    return _ARRAY_TYPES[declared]


def test_the_column_lists_match_the_tables_and_the_rows_built_for_them() -> None:
    """The PostgreSQL statements are built from these lists: a column missing from one, or cast to the
    wrong array type, would only fail on PostgreSQL, at the first batch."""
    events, deliveries = EventRow.__table__, DeliveryRow.__table__
    assert isinstance(events, Table)
    assert isinstance(deliveries, Table)
    assert {name for name, _ in EVENT_COLUMNS} == {c.name for c in events.columns if c.name != "seq"}
    assert {name: _array_type(events, name) for name, _ in EVENT_COLUMNS} == dict(EVENT_COLUMNS)
    assert list(event_row(queued(1), "stored", datetime.now(UTC))) == [name for name, _ in EVENT_COLUMNS]
    assert {name: _array_type(deliveries, name) for name, _ in DELIVERY_COLUMNS} == dict(DELIVERY_COLUMNS)
    guards = {"attempt": "integer", "refund": "integer"}  # compared and subtracted, not columns
    written = {name: guards.get(name) or _array_type(deliveries, name) for name, _ in OUTCOME_COLUMNS}
    assert written == dict(OUTCOME_COLUMNS)


def test_a_vendor_event_is_stored_with_its_located_action_id_headers_and_the_body_as_payload(
    config: Config, worker: Worker, registry: Registry
) -> None:
    seen: list[Event] = []
    registry.handler("PAYMENT_INTENT:*", name="payments")(seen.append)
    body = '{"id": "evt_1", "type": "payment_intent.succeeded", "created": 1700000000, "note": "\\u0000"}'
    event = msgspec.structs.replace(
        queued(9),
        body=body,
        action="PAYMENT_INTENT:SUCCEEDED",
        sent_at=1_700_000_000,
        whole_body=True,
        vendor_event_id="evt_1",
        headers={"user-agent": "Stripe/1.0", "content-type": "application/json"},
    )
    set_context(worker.context)
    store_batch([as_job_arg(event)])

    [handled] = seen
    assert handled.payload == msgspec.json.decode(body)
    assert handled.vendor_event_id == "evt_1"
    assert handled.headers == {"user-agent": "Stripe/1.0", "content-type": "application/json"}
    assert handled.sent_at == datetime.fromtimestamp(1_700_000_000, UTC)
    [(action, resource, verb, payload, vendor_id, headers)] = rows(
        config, "select action, resource, verb, payload, vendor_event_id, headers from events"
    )
    assert (action, resource, verb, payload, vendor_id) == (
        "PAYMENT_INTENT:SUCCEEDED",
        "PAYMENT_INTENT",
        "SUCCEEDED",
        body,
        "evt_1",
    )
    assert msgspec.json.decode(headers) == handled.headers


def test_a_job_queued_before_vendors_decodes_and_reads_the_envelope(worker: Worker, registry: Registry) -> None:
    """Jobs and spool rows written by the previous version carry six fields; they still store."""
    seen: list[Event] = []
    registry.handler("LOCATION:*", name="loc")(seen.append)
    body = gxm_body("LOCATION:UPDATED", {"n": 1}, sent_at=1_600_000_000).decode()
    old_job = ["0190d1a2-7c3e-7a00-8000-00000000abcd", "gxm", "f" * 32, 1_700_000_000_000_000, "req-old", body]
    set_context(worker.context)
    store_batch([old_job])
    [handled] = seen
    assert (handled.action, handled.payload, handled.vendor_event_id, handled.headers) == (
        "LOCATION:UPDATED",
        {"n": 1},
        None,
        {},
    )
    assert handled.sent_at == datetime.fromtimestamp(1_600_000_000, UTC)
