"""hookyard's own events: a dead delivery emits HOOKYARD:DELIVERY:DEAD once, with its outcome, and never loops."""

from __future__ import annotations

import json

from tests.conftest import Config, Worker, enqueue_events, gxm_body, rows
from tests.workers.rows import delivery_statuses
from workers import record
from workers.event import Event, PermanentError
from workers.own_events import DEAD_ACTION
from workers.record import Outcome
from workers.registry import Registry


def own_events(config: Config) -> list[tuple[str, str, str]]:
    return [tuple(row) for row in rows(config, "select id, action, payload from events where source = 'hookyard'")]


def test_a_dead_delivery_emits_one_own_event_that_handlers_receive(
    config: Config, worker: Worker, registry: Registry
) -> None:
    alerts: list[Event] = []

    @registry.handler("INVOICE:*", name="fails", max_attempts=2)
    def fails(event: Event) -> None:
        raise ValueError(f"attempt {event.attempt} failed")

    @registry.handler(DEAD_ACTION, name="alert")
    def alert(event: Event) -> None:
        alerts.append(event)
        raise PermanentError("the pager is down too")  # dead: must not emit another

    [event_id] = enqueue_events(config, gxm_body("INVOICE:PAID"))
    worker.drain_until(lambda: len(alerts) == 1 and len(own_events(config)) == 1)
    worker.drain()

    [(own_id, action, payload)] = own_events(config)
    assert action == DEAD_ACTION
    assert json.loads(payload) == {
        "event_id": event_id,
        "handler": "fails",
        "attempts": 2,
        "last_error": json.loads(payload)["last_error"],
    }
    assert json.loads(payload)["last_error"].startswith("ValueError: attempt 2 failed")
    [seen] = alerts
    assert (seen.id, seen.source, seen.payload["event_id"]) == (own_id, "hookyard", event_id)
    assert seen.headers == {"content-type": "application/json"}
    assert delivery_statuses(config, own_id) == {"alert": ("dead", 1)}
    assert len(own_events(config)) == 1  # the alert's own dead delivery emitted nothing

    # A late writer re-recording the same dead outcome changes nothing and emits nothing.
    [(delivery_id,)] = rows(config, "select id from deliveries where event_id = :e", e=event_id)
    stale = Outcome(delivery_id, event_id, "fails", "dead", "late", None, attempt=2)
    record.record(worker.context, [stale])
    assert len(own_events(config)) == 1
