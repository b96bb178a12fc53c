"""Store a batch of queued events and plan one delivery per matching handler.

One transaction per batch. Inserts ignore conflicts on the event id (the
same job re-run after a crash) and on (source, fingerprint) (the same event
re-sent while Redis was away), so storing is idempotent and an event is
stored once however often its job runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from schemas.wire import IngestEnvelope, QueuedEvent
from workers.registry import Registry

_decode_envelope = msgspec.json.Decoder(IngestEnvelope).decode


def _insert(session: Session, table: type[EventRow] | type[DeliveryRow]) -> sqlite.Insert | postgresql.Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


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


def store_events(
    session: Session, events: Sequence[QueuedEvent], registry: Registry, default_max_attempts: int
) -> list[str]:
    """Insert events and their deliveries; returns the ids of this batch's events now stored."""
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    deliveries: list[dict[str, object]] = []
    for event in events:
        row = event_row(event, EventStatus.STORED, now)
        matching = registry.matching(str(row["action"]))
        if matching:
            row["status"] = EventStatus.PROCESSING
        rows.append(row)
        deliveries.extend(
            {
                "event_id": event.id,
                "handler": spec.name,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "max_attempts": spec.max_attempts or default_max_attempts,
                "created_at": now,
                "updated_at": now,
            }
            for spec in matching
        )
    if rows:
        session.execute(_insert(session, EventRow), rows)
    ids = [event.id for event in events]
    stored = set(session.scalars(select(EventRow.id).where(EventRow.id.in_(ids))))
    planned = [d for d in deliveries if d["event_id"] in stored]
    if planned:
        session.execute(_insert(session, DeliveryRow), planned)
    return [event_id for event_id in ids if event_id in stored]


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
