"""Store a batch of queued events and plan one delivery per matching handler, claimed in the same commit.

One write per batch (on PostgreSQL one statement, `_PG_STORE_AND_CLAIM`):
events are inserted, and one delivery per matching handler is inserted
already claimed (attempt 1 counted, lease set: `workers.lease`), so storing
and claiming cost one commit. Inserts ignore conflicts on the event id (the
same job re-run after a crash) and on (source, fingerprint) (the same event
re-sent while Redis was away), so storing is idempotent and an event is
stored once however often its job runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Table, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from schemas.wire import IngestEnvelope, QueuedEvent
from workers.batch_sql import Columns, arrays, names, postgres, unnest
from workers.context import WorkerContext
from workers.lease import Claimed, db_now, lease_seconds
from workers.registry import HandlerSpec, Registry

EVENT_COLUMNS: Columns = (
    ("id", "varchar"),
    ("source", "varchar"),
    ("fingerprint", "varchar"),
    ("action", "varchar"),
    ("resource", "varchar"),
    ("verb", "varchar"),
    ("sent_at", "bigint"),
    ("received_at", "timestamptz"),
    ("stored_at", "timestamptz"),
    ("status", "varchar"),
    ("request_id", "varchar"),
    ("payload", "text"),
    ("body", "text"),
    ("vendor_event_id", "varchar"),
    ("headers", "text"),
)
"""The columns a stored event is inserted with (`event_row` gives their values)."""
DELIVERY_COLUMNS: Columns = (
    ("event_id", "varchar"),
    ("handler", "varchar"),
    ("status", "varchar"),
    ("attempts", "integer"),
    ("max_attempts", "integer"),
    ("lease_until", "timestamptz"),
    ("lease_owner", "varchar"),
    ("last_started_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
"""The columns a planned delivery is inserted with."""

_LEASE_UNTIL = "statement_timestamp() + make_interval(secs => CAST(:lease_seconds AS float8))"
"""A new claim's lease, in the database's clock (`workers.lease.db_now`); NULL when not claiming."""

_PG_STORE_AND_CLAIM = text(
    f"WITH e AS (INSERT INTO events ({names(EVENT_COLUMNS)}) SELECT * FROM {unnest(EVENT_COLUMNS)} "  # noqa: S608
    "ON CONFLICT DO NOTHING RETURNING id), "
    f"d AS (INSERT INTO deliveries ({names(DELIVERY_COLUMNS)}) SELECT "
    + ", ".join(_LEASE_UNTIL if name == "lease_until" else f"u.{name}" for name, _ in DELIVERY_COLUMNS)
    + f" FROM {unnest(DELIVERY_COLUMNS, 'd_')} "  # noqa: S608 - constants only
    f"AS u({names(DELIVERY_COLUMNS)}) WHERE u.event_id IN (SELECT id FROM e) ON CONFLICT DO NOTHING "
    "RETURNING id, event_id, handler, attempts, max_attempts) "
    "SELECT e.id, d.id, d.handler, d.attempts, d.max_attempts FROM e LEFT JOIN d ON d.event_id = e.id"
)
"""Events, then the deliveries of those inserted now, in ONE statement (data-modifying CTEs):
atomic even outside a transaction, so one round trip stores and claims. (Its text is built
from the constant column lists only; every value is a bound parameter.)"""

_decode_envelope = msgspec.json.Decoder(IngestEnvelope).decode
_encode_headers = msgspec.json.Encoder().encode


def event_row(event: QueuedEvent, status: str, now: datetime) -> dict[str, object]:
    """The `EVENT_COLUMNS` of one queued event: what ingest located, and the payload out of the body.

    A `json` source's payload is the whole body; a GuestXM one's is `data.payload`, read
    here as exact text. A job queued before ingest located actions has no `action`: its
    action and time come from the envelope, as they did then.
    """
    action, sent_at = event.action, event.sent_at
    if event.whole_body:
        payload = event.body
    else:
        data = _decode_envelope(event.body).data
        payload = bytes(data.payload).decode("utf-8")
        if not action:
            action, sent_at = data.action, data.sent_at
    parts = action.split(":")
    return {
        "id": event.id,
        "source": event.source,
        "fingerprint": event.fingerprint,
        "action": action,
        "resource": parts[0],
        "verb": parts[-1],
        "sent_at": sent_at,
        "received_at": datetime.fromtimestamp(event.received_at_us / 1_000_000, UTC),
        "stored_at": now,
        "status": status,
        "request_id": event.request_id,
        "payload": payload,
        "body": event.body,
        "vendor_event_id": event.vendor_event_id,
        "headers": _encode_headers(event.headers).decode() if event.headers else None,
    }


class StoredEvent(msgspec.Struct, frozen=True):
    """The columns a handler's `Event` is built from, without reading the row back."""

    id: str
    source: str
    action: str
    sent_at: int
    received_at: datetime
    payload: str
    request_id: str
    vendor_event_id: str | None = None
    headers: str | None = None
    """The kept request headers as a JSON object (`events.headers`)."""
    body: str = ""
    """The exact request body (`events.body`): what a forward sends."""


class Stored(msgspec.Struct, frozen=True):
    claimed: list[Claimed]
    """Deliveries of events first stored now: claimed in the same transaction."""
    events: dict[str, StoredEvent]
    """Those events, by id."""
    earlier: list[str]
    """Events of this batch stored by an earlier run of the job: their open deliveries run the slow way."""


def store_and_claim(context: WorkerContext, events: Sequence[QueuedEvent]) -> Stored:
    """The store job's first step: store `events` with their deliveries claimed, in one commit.

    The claims' lease is any registered handler's worst case from the moment
    of the write, in the database's clock, and held by this process
    (`workers.lease.Holdings`) until their outcomes are recorded.
    """
    lease = lease_seconds(context, [spec.name for spec in context.registry.all()])
    with context.connections.one_statement() as session:  # `_insert` is one statement on PostgreSQL
        settings = context.settings.handlers
        stored = store_events(
            session, events, context.registry, settings.default_max_attempts, lease, context.leases.owner
        )
    context.leases.hold(stored.claimed)
    return stored


def store_events(
    session: Session,
    events: Sequence[QueuedEvent],
    registry: Registry,
    default_max_attempts: int,
    lease: float | None = None,
    owner: str | None = None,
) -> Stored:
    """Insert events and their deliveries (atomically: see `_insert`).

    With `lease` (seconds), the new deliveries are inserted already claimed
    by `owner` (attempt 1 counted, lease set in the database's clock), so
    storing and claiming cost one commit.
    """
    now = datetime.now(UTC)
    claiming = lease is not None
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
                "attempts": 1 if claiming else 0,
                "max_attempts": spec.max_attempts or default_max_attempts,
                "lease_until": None,  # set by the database (`_insert`)
                "lease_owner": owner if claiming else None,
                "last_started_at": now if claiming else None,
                "created_at": now,
                "updated_at": now,
            }
            for spec in matching
        ]
    if not rows:
        return Stored([], {}, [])
    inserted, fresh = _insert(session, rows, [d for ds in planned.values() for d in ds], lease)
    claimed = sorted(fresh, key=lambda c: c.id)
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
            vendor_event_id=row["vendor_event_id"],  # type: ignore[arg-type]
            headers=row["headers"],  # type: ignore[arg-type]
            body=str(row["body"]),
        )
        for row in rows
        if row["id"] in inserted
    }
    return Stored(claimed, stored, [event_id for event_id in ids if event_id in set(earlier)])


def _insert(
    session: Session, rows: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]], lease: float | None
) -> tuple[set[str], list[Claimed]]:
    """Insert events, then the deliveries of those inserted now, leased for `lease` seconds (None: unclaimed);
    returns (ids inserted, deliveries inserted)."""
    if not postgres(session):
        inserted = _insert_events(session, rows)
        if lease is not None:  # SQLite runs in this process: one in-process read of its clock
            lease_until = session.scalar(select(db_now(lease)))
            deliveries = [{**d, "lease_until": lease_until} for d in deliveries]
        return inserted, _insert_deliveries(session, [d for d in deliveries if d["event_id"] in inserted])
    params: dict[str, Any] = {"lease_seconds": lease, **arrays(rows, EVENT_COLUMNS)}
    params.update(arrays(deliveries, DELIVERY_COLUMNS, "d_"))
    inserted, claimed = set(), []
    for event_id, delivery_id, handler, attempts, max_attempts in session.execute(_PG_STORE_AND_CLAIM, params):
        inserted.add(str(event_id))
        if delivery_id is not None:
            claimed.append(Claimed(int(delivery_id), str(event_id), str(handler), int(attempts), int(max_attempts)))
    return inserted, claimed


def _table(entity: type[EventRow] | type[DeliveryRow]) -> Table:
    return cast(Table, entity.__table__)


def _insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """SQLite: insert, skipping ids or (source, fingerprint) already stored; returns the ids inserted now."""
    table = _table(EventRow)
    statement = sqlite.insert(table).on_conflict_do_nothing().returning(table.c.id)
    return set(session.execute(statement, list(rows)).scalars())


def _insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> list[Claimed]:
    """SQLite: insert, skipping (event, handler) pairs that exist; returns the deliveries inserted now."""
    if not rows:
        return []
    table = _table(DeliveryRow)
    statement = (
        sqlite.insert(table)
        .on_conflict_do_nothing()
        .returning(table.c.id, table.c.event_id, table.c.handler, table.c.attempts, table.c.max_attempts)
    )
    result = session.execute(statement, list(rows))
    return [Claimed(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in result]


def open_deliveries(context: WorkerContext, event_ids: Sequence[str]) -> list[int]:
    """Deliveries of these events that still have to run, oldest first."""
    if not event_ids:
        return []
    with context.sessions() as session:
        return list(
            session.scalars(
                select(DeliveryRow.id)
                .where(DeliveryRow.event_id.in_(event_ids), DeliveryRow.status.in_(DeliveryStatus.OPEN))
                .order_by(DeliveryRow.id)
            )
        )
