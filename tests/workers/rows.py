"""Stored events for tests, written through SQLAlchemy with schemas.tables, and read back as a user sees them."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from schemas.ids import new_event_id
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from schemas.wire import QueuedEvent
from tests.conftest import Config, gxm_body, rows


def unique_source() -> str:
    """A source name no other test uses, so its Redis fingerprint hash is ours alone."""
    return f"t-{uuid.uuid4().hex[:12]}"


def queued(n: int) -> QueuedEvent:
    """The n-th distinct event as a store job carries it, not yet stored."""
    body = gxm_body(payload={"n": n}, sent_at=1_700_000_000 + n)
    return QueuedEvent(
        id=new_event_id(),
        source="gxm",
        fingerprint=hashlib.sha256(body).hexdigest()[:32],
        received_at_us=1_700_000_000_000_000,
        request_id=f"r{n}",
        body=body.decode(),
    )


def event_row(
    source: str,
    received_at: datetime,
    *,
    action: str = "LOCATION:CREATED",
    status: str = EventStatus.PROCESSED,
) -> EventRow:
    event_id = new_event_id()
    resource, _, verb = action.partition(":")
    return EventRow(
        id=event_id,
        source=source,
        fingerprint=hashlib.sha256(event_id.encode()).hexdigest(),
        action=action,
        resource=resource,
        verb=verb.rpartition(":")[2] or verb,
        sent_at=int(received_at.timestamp()),
        received_at=received_at,
        stored_at=received_at,
        status=status,
        request_id=uuid.uuid4().hex,
        payload='{"company_id": 999999}',
        body='{"data": {}}',
    )


def delivery_row(
    event: EventRow, handler: str, created_at: datetime, status: str = DeliveryStatus.SUCCEEDED
) -> DeliveryRow:
    return DeliveryRow(
        event_id=event.id,
        handler=handler,
        status=status,
        attempts=1,
        max_attempts=5,
        created_at=created_at,
        updated_at=created_at,
    )


def store(session: Session, event: EventRow, handlers: tuple[str, ...] = ("crm", "audit")) -> EventRow:
    """Add one event with a delivery per handler; the caller commits."""
    session.add(event)
    session.flush()
    for name in handlers:
        session.add(delivery_row(event, name, event.received_at))
    return event


def delivery_statuses(config: Config, event_id: str) -> dict[str, tuple[str, int]]:
    """handler -> (status, attempts) of one event's deliveries."""
    found = rows(config, "select handler, status, attempts from deliveries where event_id = :e", e=event_id)
    return {handler: (status, attempts) for handler, status, attempts in found}


def event_status(config: Config, event_id: str) -> str:
    return str(rows(config, "select status from events where id = :e", e=event_id)[0][0])
