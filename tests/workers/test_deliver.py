"""Running deliveries: fan-out, isolation, time limits, async handlers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC

import pytest

from schemas.wire import QueuedEvent
from tests.conftest import Config, Worker, enqueue_events, gxm_body, rows
from tests.workers.rows import delivery_statuses, event_status
from workers import deliver
from workers.event import Event, PermanentError
from workers.registry import Registry
from workers.store import open_deliveries, store_events


def test_fan_out_runs_every_matching_handler_once(config: Config, worker: Worker, registry: Registry) -> None:
    calls: list[str] = []
    for name, pattern in [
        ("exact", "LOCATION:DELETED"),
        ("resource", "LOCATION:*"),
        ("verb", "*:DELETED"),
        ("all", "*"),
        ("other", "BOOKING:*"),
    ]:
        registry.handler(pattern, name=name)(lambda event, name=name: calls.append(name))

    [event_id] = enqueue_events(config, gxm_body("LOCATION:DELETED"))
    worker.drain()

    assert sorted(calls) == ["all", "exact", "resource", "verb"]
    assert delivery_statuses(config, event_id) == {
        "all": ("succeeded", 1),
        "exact": ("succeeded", 1),
        "resource": ("succeeded", 1),
        "verb": ("succeeded", 1),
    }
    assert event_status(config, event_id) == "processed"


def test_handler_receives_the_event(config: Config, worker: Worker, registry: Registry) -> None:
    seen: list[Event] = []
    registry.handler("*", name="collect")(seen.append)
    payload = {"company_id": 7, "name": "nul \u0000 inside", "nested": {"b": [1, 2.5, None, True]}}
    [event_id] = enqueue_events(config, gxm_body("LOCATION:CREATED", payload, sent_at=1564662600))
    worker.drain()

    [event] = seen
    assert event.id == event_id
    assert event.source == "gxm"
    assert event.action == "LOCATION:CREATED"
    assert event.payload == payload
    assert event.attempt == 1
    assert event.sent_at.tzinfo is UTC or event.sent_at.utcoffset() is not None
    assert event.sent_at.timestamp() == 1564662600
    assert event.received_at.utcoffset() is not None
    assert event.idempotency_key == f"{event_id}:collect"


def test_failing_handler_does_not_block_others(config: Config, worker: Worker, registry: Registry) -> None:
    good: list[str] = []

    @registry.handler("*", name="broken", max_attempts=3)
    def broken(event: Event) -> None:
        raise RuntimeError("downstream said no")

    registry.handler("*", name="good")(lambda event: good.append(event.id))

    first, second = enqueue_events(config, gxm_body(payload={"n": 1}), gxm_body(payload={"n": 2}))
    worker.drain()

    assert sorted(good) == sorted([first, second])
    for event_id in (first, second):
        statuses = delivery_statuses(config, event_id)
        assert statuses["good"] == ("succeeded", 1)
        assert statuses["broken"] == ("retrying", 1)
        assert event_status(config, event_id) == "processing"
    [(error,)] = rows(config, "select last_error from deliveries where handler = 'broken' and event_id = :e", e=first)
    assert "RuntimeError: downstream said no" in error


def test_permanent_error_is_dead_at_once(config: Config, worker: Worker, registry: Registry) -> None:
    @registry.handler("*", name="refuses", max_attempts=5)
    def refuses(event: Event) -> None:
        raise PermanentError("unknown company")

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain()
    assert delivery_statuses(config, event_id) == {"refuses": ("dead", 1)}
    assert event_status(config, event_id) == "failed"


def test_async_handlers_run(config: Config, worker: Worker, registry: Registry) -> None:
    seen: list[int] = []

    @registry.handler("*", name="async-ok")
    async def ok(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.attempt)

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain()
    assert seen == [1]
    assert delivery_statuses(config, event_id) == {"async-ok": ("succeeded", 1)}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_hanging_handler_is_stopped_by_its_time_limit(
    config: Config, worker: Worker, registry: Registry, kind: str
) -> None:
    if kind == "sync":

        def hang(event: Event) -> None:
            time.sleep(30)

    else:

        async def hang(event: Event) -> None:  # type: ignore[misc]
            await asyncio.sleep(30)

    registry.handler("*", name="hangs", timeout_seconds=0.3, max_attempts=2)(hang)
    registry.handler("*", name="fine")(lambda event: None)

    started = time.monotonic()
    [event_id] = enqueue_events(config, gxm_body())
    worker.drain()
    assert time.monotonic() - started < 10
    statuses = delivery_statuses(config, event_id)
    assert statuses["hangs"] == ("retrying", 1)
    assert statuses["fine"] == ("succeeded", 1)
    [(error,)] = rows(config, "select last_error from deliveries where handler = 'hangs'")
    assert "time limit" in error


def test_an_async_handler_that_blocks_the_loop_is_still_stopped(
    config: Config, worker: Worker, registry: Registry
) -> None:
    @registry.handler("*", name="blocks-loop", timeout_seconds=0.5, max_attempts=2)
    async def blocks(event: Event) -> None:
        time.sleep(10)  # a blocking call inside async code  # noqa: ASYNC251

    registry.handler("*", name="after")(lambda event: None)
    [event_id] = enqueue_events(config, gxm_body())
    started = time.monotonic()
    worker.drain()
    assert time.monotonic() - started < 5
    assert delivery_statuses(config, event_id)["blocks-loop"] == ("retrying", 1)
    assert delivery_statuses(config, event_id)["after"] == ("succeeded", 1)


def test_a_handler_missing_on_this_worker_is_not_charged(config: Config, worker: Worker, registry: Registry) -> None:
    """Mid rolling deploy an old worker may lack a new handler: leave the delivery for a newer worker."""
    newer = Registry()
    newer.handler("*", name="new-handler")(lambda event: None)
    [event_id] = enqueue_events(config, gxm_body())
    job = worker.context.queue.fetch_job(worker.context.queue.get_job_ids()[0])
    assert job is not None
    with worker.context.sessions() as session, session.begin():
        stored = store_events(session, [QueuedEvent(*item) for item in job.args[0]], newer, 5)
    delivery_ids = open_deliveries(worker.context, list(stored.events))
    deliver.run(worker.context, delivery_ids)  # this worker's registry predates the handler
    [(status, attempts, next_at, error)] = rows(
        config, "select status, attempts, next_attempt_at, last_error from deliveries where event_id = :e", e=event_id
    )
    assert (status, attempts) == ("pending", 0)
    assert next_at is not None
    assert "not registered" in error
