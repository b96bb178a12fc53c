"""Store a batch of queued events and plan one delivery per matching handler.

One transaction per batch, which also claims the new deliveries (see
`store_events`). Inserts ignore conflicts on the event id (the
same job re-run after a crash) and on (source, fingerprint) (the same event
re-sent while Redis was away), so storing is idempotent and an event is
stored once however often its job runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from schemas.wire import IngestEnvelope, QueuedEvent
from workers.bulk import store_and_claim
from workers.registry import HandlerSpec, Registry

_decode_envelope = msgspec.json.Decoder(IngestEnvelope).decode


def event_row(event: QueuedEvent, status: str, now: datetime) -> dict[str, object]:
    envelope = _decode_envelope(event.body)
    data = envelope.data
    parts = data.action.split(":")
    return {
        "id": event.id,
        "source": event.source,
        "fingerprint": event.fingerprint,
        "action": data.action,
        "resource": parts[0],
        "verb": parts[-1],
        "sent_at": data.sent_at,
        "received_at": datetime.fromtimestamp(event.received_at_us / 1_000_000, UTC),
        "stored_at": now,
        "status": status,
        "request_id": event.request_id,
        "payload": bytes(data.payload).decode("utf-8"),
        "body": event.body,
    }


class Claimed(msgspec.Struct, frozen=True):
    """A delivery this worker holds: attempts counted and lease set, committed."""

    id: int
    event_id: str
    handler: str
    attempts: int
    max_attempts: int


class StoredEvent(msgspec.Struct, frozen=True):
    """The columns a handler's `Event` is built from, without reading the row back."""

    id: str
    source: str
    action: str
    sent_at: int
    received_at: datetime
    payload: str
    request_id: str


class Stored(msgspec.Struct, frozen=True):
    claimed: list[Claimed]
    """Deliveries of events first stored now: claimed in the same transaction."""
    events: dict[str, StoredEvent]
    """Those events, by id."""
    earlier: list[str]
    """Events of this batch stored by an earlier run of the job: their open deliveries run the slow way."""


def store_events(
    session: Session,
    events: Sequence[QueuedEvent],
    registry: Registry,
    default_max_attempts: int,
    lease_until: datetime | None = None,
) -> Stored:
    """Insert events and their deliveries (atomically: see `bulk.store_and_claim`).

    With `lease_until`, the new deliveries are inserted already claimed
    (attempt 1 counted, lease set), so storing and claiming cost one commit.
    """
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    planned: dict[str, list[dict[str, object]]] = {}
    matches: dict[str, list[HandlerSpec]] = {}
    for event in events:
        row = event_row(event, EventStatus.STORED, now)
        action = str(row["action"])
        if action not in matches:
            matches[action] = registry.matching(action)
        matching = matches[action]
        if matching:
            row["status"] = EventStatus.PROCESSING
        rows.append(row)
        planned[event.id] = [
            {
                "event_id": event.id,
                "handler": spec.name,
                "status": DeliveryStatus.PENDING,
                "attempts": 0 if lease_until is None else 1,
                "max_attempts": spec.max_attempts or default_max_attempts,
                "lease_until": lease_until,
                "last_started_at": None if lease_until is None else now,
                "created_at": now,
                "updated_at": now,
            }
            for spec in matching
        ]
    if not rows:
        return Stored([], {}, [])
    inserted, fresh = store_and_claim(session, rows, [d for ds in planned.values() for d in ds])
    claimed = sorted((Claimed(*row) for row in fresh), key=lambda c: c.id)
    ids = [event.id for event in events]
    left = [event_id for event_id in ids if event_id not in inserted]
    earlier = list(session.scalars(select(EventRow.id).where(EventRow.id.in_(left)))) if left else []
    stored = {
        str(row["id"]): StoredEvent(
            id=str(row["id"]),
            source=str(row["source"]),
            action=str(row["action"]),
            sent_at=int(row["sent_at"]),  # type: ignore[call-overload]
            received_at=row["received_at"],  # type: ignore[arg-type]
            payload=str(row["payload"]),
            request_id=str(row["request_id"]),
        )
        for row in rows
        if row["id"] in inserted
    }
    return Stored(claimed, stored, [event_id for event_id in ids if event_id in set(earlier)])


def open_deliveries(session: Session, event_ids: Sequence[str]) -> list[int]:
    """Deliveries of these events that still have to run, oldest first."""
    if not event_ids:
        return []
    return list(
        session.scalars(
            select(DeliveryRow.id)
            .where(DeliveryRow.event_id.in_(event_ids), DeliveryRow.status.in_(DeliveryStatus.OPEN))
            .order_by(DeliveryRow.id)
        )
    )
