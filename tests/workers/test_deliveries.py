"""Fan-out to handlers: patterns, isolation, retries, dead letters, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from datetime import UTC

import pytest

from tests.conftest import Config, Worker, enqueue_events, gxm_body, rows
from workers.event import Event, PermanentError
from workers.registry import HandlerError, Registry, check_pattern, pattern_matches


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("LOCATION:CREATED", "LOCATION:CREATED", True),
        ("LOCATION:CREATED", "LOCATION:DELETED", False),
        ("LOCATION:*", "LOCATION:CREATED", True),
        ("LOCATION:*", "BOOKING:CREATED", False),
        ("LOCATION:*", "LOCATION:CREATED:NOW", False),
        ("*:DELETED", "LOCATION:DELETED", True),
        ("*:DELETED", "LOCATION:CREATED", False),
        ("*:DELETED", "A:B:DELETED", False),
        ("*", "LOCATION:CREATED:NOW", True),
        ("*", "A:B", True),
        ("A:*:C", "A:B:C", True),
        ("PUSH", "PUSH", True),
        ("PUSH", "PUSH:NOW", False),
        ("PULL_REQUEST:*", "PULL_REQUEST", False),
        ("CUSTOMER:SUBSCRIPTION:UPDATED", "CUSTOMER:SUBSCRIPTION:UPDATED", True),
        ("HOOKYARD:DELIVERY:*", "HOOKYARD:DELIVERY:DEAD", True),
        ("HOOKYARD:DELIVERY:*", "HOOKYARD:DELIVERY", False),
        ("*:*:UPDATED", "CUSTOMER:SUBSCRIPTION:UPDATED", True),
        ("*:*:UPDATED", "SUBSCRIPTION:UPDATED", False),
        ("*:*", "A:B", True),
        ("*:*", "A", False),
    ],
)
def test_pattern_matrix(pattern: str, action: str, matches: bool) -> None:
    assert pattern_matches(check_pattern(pattern), action) is matches


@pytest.mark.parametrize("pattern", ["location:*", "LOCATION:", ":LOCATION", "A::B", "**", "LOCATION:**", "", "A-B"])
def test_bad_patterns_are_refused_at_declaration(pattern: str) -> None:
    with pytest.raises(HandlerError, match="bad action pattern"):
        Registry().handler(pattern)


def _statuses(config: Config, event_id: str) -> dict[str, tuple[str, int]]:
    found = rows(config, "select handler, status, attempts from deliveries where event_id = :e", e=event_id)
    return {handler: (status, attempts) for handler, status, attempts in found}


def _event_status(config: Config, event_id: str) -> str:
    return str(rows(config, "select status from events where id = :e", e=event_id)[0][0])


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
    assert _statuses(config, event_id) == {
        "all": ("succeeded", 1),
        "exact": ("succeeded", 1),
        "resource": ("succeeded", 1),
        "verb": ("succeeded", 1),
    }
    assert _event_status(config, event_id) == "processed"


def test_event_without_handlers_is_stored(config: Config, worker: Worker, registry: Registry) -> None:
    registry.handler("BOOKING:*", name="bookings")(lambda event: None)
    [event_id] = enqueue_events(config, gxm_body("LOCATION:CREATED"))
    worker.drain()
    assert _event_status(config, event_id) == "stored"
    assert _statuses(config, event_id) == {}


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


def test_payload_text_is_stored_exactly_as_sent(config: Config, worker: Worker, registry: Registry) -> None:
    payload_text = '{ "z": 1, "a": "\\u0000\\u00e9", "n": 1.50 }'
    body = ('{"data": {"sent_at": 1, "action": "LOCATION:CREATED", "payload": ' + payload_text + "}}").encode()
    [event_id] = enqueue_events(config, body)
    worker.drain()
    [(stored_payload, stored_body)] = rows(config, "select payload, body from events where id = :e", e=event_id)
    assert stored_payload == payload_text
    assert stored_body == body.decode()


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
        statuses = _statuses(config, event_id)
        assert statuses["good"] == ("succeeded", 1)
        assert statuses["broken"] == ("retrying", 1)
        assert _event_status(config, event_id) == "processing"
    [(error,)] = rows(config, "select last_error from deliveries where handler = 'broken' and event_id = :e", e=first)
    assert "RuntimeError: downstream said no" in error


def test_retries_then_success_rerun_only_the_failed_delivery(
    config: Config, worker: Worker, registry: Registry
) -> None:
    attempts: list[int] = []
    good: list[int] = []

    @registry.handler("LOCATION:*", name="flaky", max_attempts=5)
    def flaky(event: Event) -> None:
        attempts.append(event.attempt)
        if event.attempt < 3:
            raise ConnectionError("try again")

    registry.handler("LOCATION:*", name="good")(lambda event: good.append(event.attempt))

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain_until(lambda: _statuses(config, event_id)["flaky"][0] == "succeeded")

    assert attempts == [1, 2, 3]
    assert good == [1]
    assert _statuses(config, event_id) == {"flaky": ("succeeded", 3), "good": ("succeeded", 1)}
    assert _event_status(config, event_id) == "processed"


def test_retries_then_dead(config: Config, worker: Worker, registry: Registry) -> None:
    @registry.handler("*", name="always-fails", max_attempts=3)
    def always_fails(event: Event) -> None:
        raise ValueError(f"attempt {event.attempt} failed")

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain_until(lambda: _statuses(config, event_id)["always-fails"][0] == "dead")

    assert _statuses(config, event_id) == {"always-fails": ("dead", 3)}
    assert _event_status(config, event_id) == "failed"
    [(error,)] = rows(config, "select last_error from deliveries where event_id = :e", e=event_id)
    assert "attempt 3 failed" in error


def test_backoff_spaces_the_retries(config: Config, worker: Worker, registry: Registry) -> None:
    """retry_base_seconds is 0.05 in tests: attempt 2 waits >= 0.04 s, attempt 3 >= 0.08 s."""
    started: list[float] = []

    @registry.handler("*", name="slow-to-recover", max_attempts=3)
    def slow(event: Event) -> None:
        started.append(time.monotonic())
        raise RuntimeError("not yet")

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain_until(lambda: _statuses(config, event_id)["slow-to-recover"][0] == "dead")
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert len(gaps) == 2
    assert gaps[0] >= 0.04
    assert gaps[1] >= 0.08


def test_permanent_error_is_dead_at_once(config: Config, worker: Worker, registry: Registry) -> None:
    @registry.handler("*", name="refuses", max_attempts=5)
    def refuses(event: Event) -> None:
        raise PermanentError("unknown company")

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain()
    assert _statuses(config, event_id) == {"refuses": ("dead", 1)}
    assert _event_status(config, event_id) == "failed"


def test_async_handlers_run(config: Config, worker: Worker, registry: Registry) -> None:
    seen: list[int] = []

    @registry.handler("*", name="async-ok")
    async def ok(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.attempt)

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain()
    assert seen == [1]
    assert _statuses(config, event_id) == {"async-ok": ("succeeded", 1)}


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
    statuses = _statuses(config, event_id)
    assert statuses["hangs"] == ("retrying", 1)
    assert statuses["fine"] == ("succeeded", 1)
    [(error,)] = rows(config, "select last_error from deliveries where handler = 'hangs'")
    assert "time limit" in error


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


def test_a_slow_group_keeps_its_finished_deliveries_leased(config: Config, worker: Worker, registry: Registry) -> None:
    """Outcomes are written at the end of a group: the sweeper must not see finished ones as abandoned."""
    from workers.jobs import find_stranded  # noqa: PLC0415

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
    assert _statuses(config, event_id) == {"a": ("succeeded", 1), "b": ("succeeded", 1), "c": ("succeeded", 1)}


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
    assert _statuses(config, event_id)["blocks-loop"] == ("retrying", 1)
    assert _statuses(config, event_id)["after"] == ("succeeded", 1)


def test_a_handler_missing_on_this_worker_is_not_charged(config: Config, worker: Worker, registry: Registry) -> None:
    """Mid rolling deploy an old worker may lack a new handler: leave the delivery for a newer worker."""
    from schemas.wire import QueuedEvent  # noqa: PLC0415
    from workers.jobs import runner_for  # noqa: PLC0415
    from workers.store import open_deliveries, store_events  # noqa: PLC0415

    newer = Registry()
    newer.handler("*", name="new-handler")(lambda event: None)
    [event_id] = enqueue_events(config, gxm_body())
    job = worker.context.queue.fetch_job(worker.context.queue.get_job_ids()[0])
    assert job is not None
    with worker.context.sessions() as session, session.begin():
        stored = store_events(session, [QueuedEvent(*item) for item in job.args[0]], newer, 5)
        delivery_ids = open_deliveries(session, list(stored.events))
    runner_for(worker.context).run(delivery_ids)  # this worker's registry predates the handler
    [(status, attempts, next_at, error)] = rows(
        config, "select status, attempts, next_attempt_at, last_error from deliveries where event_id = :e", e=event_id
    )
    assert (status, attempts) == ("pending", 0)
    assert next_at is not None
    assert "not registered" in error
