"""hookyard's own events: each delivery that goes dead emits `HOOKYARD:DELIVERY:DEAD` (source `hookyard`).

The event is written in the same transaction as the outcome that makes the
delivery dead (`workers.record`), through the store path every event takes
(`workers.store.store_events`): it exists exactly when the dead outcome was
written, and the deliveries of the handlers and forwards that match it are
planned with it. They are queued after the commit like any run job; if the
worker dies in between, the sweep finds them pending. So an alert is never
lost, and a re-run of the same outcome emits nothing twice (the fingerprint
is the delivery and attempt).

No loop: a dead delivery of a `hookyard` event emits nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.ids import new_event_id
from schemas.settings import OWN_SOURCE
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow
from schemas.wire import QueuedEvent
from workers.context import WorkerContext
from workers.shared.defaults import MAX_ERROR_CHARS
from workers.store import store_events

if TYPE_CHECKING:
    from workers.record import Outcome

log = structlog.get_logger("hookyard.own_events")

DEAD_ACTION = "HOOKYARD:DELIVERY:DEAD"
HEADERS = {"content-type": "application/json"}
"""The kept headers of an own event: a forward sends it with this `Content-Type`."""


class DeadPayload(msgspec.Struct):
    """The payload of a `HOOKYARD:DELIVERY:DEAD` event."""

    event_id: str
    handler: str
    attempts: int
    last_error: str | None


_encode = msgspec.json.Encoder().encode


def emit_dead(session: Session, context: WorkerContext, outcomes: Sequence[Outcome]) -> list[int]:
    """Store one own event per outcome that will make its delivery dead; returns their deliveries to queue.

    Call it in the outcomes' transaction, before they are written: an outcome counts only if its
    delivery is still open at that attempt (the write's own guard), so a late writer emits nothing.
    """
    dead = {o.delivery_id: o for o in outcomes if o.status == DeliveryStatus.DEAD}
    if not dead:
        return []
    found = session.execute(
        select(DeliveryRow.id, DeliveryRow.attempts, EventRow.source, EventRow.request_id)
        .join(EventRow, EventRow.id == DeliveryRow.event_id)
        .where(DeliveryRow.id.in_(dead), DeliveryRow.status.in_(DeliveryStatus.OPEN))
    ).all()
    now_us = time.time_ns() // 1000
    events = []
    for delivery_id, attempts, source, request_id in found:
        outcome = dead[delivery_id]
        if attempts != outcome.attempt or source == OWN_SOURCE:
            continue
        error = None if outcome.error is None else outcome.error[:MAX_ERROR_CHARS]
        payload = DeadPayload(outcome.event_id, outcome.handler, outcome.attempt, error)
        events.append(
            QueuedEvent(
                id=new_event_id(),
                source=OWN_SOURCE,
                fingerprint=hashlib.sha256(f"dead:{delivery_id}:{attempts}".encode()).hexdigest(),
                received_at_us=now_us,
                request_id=request_id,
                body=_encode(payload).decode(),
                action=DEAD_ACTION,
                sent_at=now_us // 1_000_000,
                whole_body=True,
                headers=HEADERS,
            )
        )
    if not events:
        return []
    stored = store_events(session, events, context.registry, context.settings.handlers.default_max_attempts)
    for event in events:
        if event.id in stored.events:
            log.info("own_event_stored", event_id=event.id, request_id=event.request_id, action=DEAD_ACTION)
    return [claimed.id for claimed in stored.claimed]
