"""Recording outcomes: retries with backoff, dead letters, and no late writer over a newer attempt."""

from __future__ import annotations

import itertools
import time

import pytest

from schemas.tables import DeliveryStatus
from tests.conftest import Config, Worker, enqueue_events, gxm_body, rows
from tests.workers.rows import delivery_statuses, event_status, queued
from workers import lease, record
from workers.event import Event
from workers.record import Outcome
from workers.registry import Registry
from workers.store import store_events


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
    worker.drain_until(lambda: delivery_statuses(config, event_id)["flaky"][0] == "succeeded")

    assert attempts == [1, 2, 3]
    assert good == [1]
    assert delivery_statuses(config, event_id) == {"flaky": ("succeeded", 3), "good": ("succeeded", 1)}
    assert event_status(config, event_id) == "processed"


def test_retries_then_dead(config: Config, worker: Worker, registry: Registry) -> None:
    @registry.handler("*", name="always-fails", max_attempts=3)
    def always_fails(event: Event) -> None:
        raise ValueError(f"attempt {event.attempt} failed")

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain_until(lambda: delivery_statuses(config, event_id)["always-fails"][0] == "dead")

    assert delivery_statuses(config, event_id) == {"always-fails": ("dead", 3)}
    assert event_status(config, event_id) == "failed"
    [(error,)] = rows(config, "select last_error from deliveries where event_id = :e", e=event_id)
    assert "attempt 3 failed" in error


def test_backoff_spaces_the_retries(config: Config, worker: Worker, registry: Registry) -> None:
    """retry_base_seconds is 0.05 in tests: attempt 2 waits >= 0.04 s, attempt 3 >= 0.08 s."""
    started: list[float] = []

    @registry.handler("LOCATION:*", name="slow-to-recover", max_attempts=3)  # not hookyard's own event
    def slow(event: Event) -> None:
        started.append(time.monotonic())
        raise RuntimeError("not yet")

    [event_id] = enqueue_events(config, gxm_body())
    worker.drain_until(lambda: delivery_statuses(config, event_id)["slow-to-recover"][0] == "dead")
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert len(gaps) == 2
    assert gaps[0] >= 0.04
    assert gaps[1] >= 0.08


@pytest.mark.parametrize("complete", [True, False], ids=["batch-just-stored", "run-job"])
def test_a_late_outcome_never_overwrites_a_newer_attempt(
    config: Config, worker: Worker, registry: Registry, complete: bool
) -> None:
    """A worker that outlived its lease (stalled, partitioned) records attempt 1 after another took attempt 2."""
    registry.handler("*", name="ok")(lambda event: None)
    context = worker.context
    with context.connections.transaction() as session:  # attempt 1 claimed, and its lease has run out
        stored = store_events(session, [queued(1)], registry, 5, -1.0)
    [first] = stored.claimed
    [second], _ = lease.claim(context, [first.id])
    assert second.attempts == 2

    late = Outcome(first.id, first.event_id, "ok", DeliveryStatus.DEAD, "late", 1.0, attempt=first.attempts)
    record.record(context, [late], complete=complete)

    assert delivery_statuses(config, first.event_id) == {"ok": ("pending", 2)}
    assert event_status(config, first.event_id) == "processing"  # the guarded-out `dead` must not count
    [(lease_until, error)] = rows(config, "select lease_until, last_error from deliveries where id = :d", d=first.id)
    assert lease_until is not None  # attempt 2 still holds it
    assert error is None

    record.record(context, [Outcome(second.id, second.event_id, "ok", DeliveryStatus.SUCCEEDED, None, 1.0, attempt=2)])
    assert delivery_statuses(config, first.event_id) == {"ok": ("succeeded", 2)}
    assert event_status(config, first.event_id) == "processed"
