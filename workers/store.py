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
from sqlalchemy import Table, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus, HandlerPauseRow
from schemas.wire import IngestEnvelope, QueuedEvent
from workers.batch_sql import Columns, arrays, names, postgres, unnest
from workers.context import WorkerContext
from workers.event import StoredEvent, build_event
from workers.lease import Claimed, db_now, in_key_order, lease_seconds, lock_keys
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
    ("ordering_key", "varchar"),
    ("ordering_sent_at", "bigint"),
    ("ordering_received_at", "timestamptz"),
)
"""The columns a planned delivery is inserted with."""

_LEASE_UNTIL = "statement_timestamp() + make_interval(secs => CAST(:lease_seconds AS float8))"
"""A new claim's lease, in the database's clock (`workers.lease.db_now`); NULL when not claiming."""
_CLAIMED = {"attempts": "u.attempts", "lease_until": _LEASE_UNTIL, "lease_owner": "u.lease_owner"}
_CLAIMED["last_started_at"] = "u.last_started_at"
_UNCLAIMED = {"attempts": "0", "lease_until": "NULL", "lease_owner": "NULL", "last_started_at": "NULL"}
"""What a delivery inserted unclaimed has instead: `workers.lease` claims it later."""
_CLAIMABLE = (
    "p.handler IS NULL AND (u.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries AS o "
    "WHERE o.ordering_key = u.ordering_key AND o.handler = u.handler AND o.ordering_key IS NOT NULL "
    "AND o.status IN ('pending', 'retrying')))"
)
"""Claimed as stored: its handler is not paused and no open delivery of its (handler, key) is stored already
(this batch's are not seen: the job runs each key's chain of the batch in order). The statement runs after
the handlers' key locks (`workers.lease`), so it sees every claim of those keys committed before."""
_DELIVERY_SELECT = ", ".join(
    f"CASE WHEN u.claim THEN {_CLAIMED[name]} ELSE {_UNCLAIMED[name]} END" if name in _UNCLAIMED else f"u.{name}"
    for name, _ in DELIVERY_COLUMNS
)

_PG_STORE_AND_CLAIM = text(
    f"WITH e AS (INSERT INTO events ({names(EVENT_COLUMNS)}) SELECT * FROM {unnest(EVENT_COLUMNS)} "  # noqa: S608
    "ON CONFLICT DO NOTHING RETURNING id), "
    f"d AS (INSERT INTO deliveries ({names(DELIVERY_COLUMNS)}) SELECT {_DELIVERY_SELECT} "
    f"FROM (SELECT u.*, {_CLAIMABLE} AS claim FROM {unnest(DELIVERY_COLUMNS, 'd_')} WITH ORDINALITY "
    f"AS u({names(DELIVERY_COLUMNS)}, n) LEFT JOIN handler_pauses AS p ON p.handler = u.handler "
    "WHERE u.event_id IN (SELECT id FROM e)) AS u ORDER BY u.n ON CONFLICT DO NOTHING "
    "RETURNING id, event_id, handler, attempts, max_attempts, ordering_key, ordering_sent_at, ordering_received_at) "
    "SELECT e.id, d.id, d.handler, d.attempts, d.max_attempts, d.ordering_key, d.ordering_sent_at, "
    "d.ordering_received_at FROM e LEFT JOIN d ON d.event_id = e.id"
)
"""Events, then the deliveries of those inserted now, in ONE statement (data-modifying CTEs):
atomic even outside a transaction, so one round trip stores and claims. A paused handler's
delivery is inserted unclaimed: the pause is checked in the same SQL that claims. Deliveries get their
ids in batch order (`ORDER BY` the array position: the joins may reorder rows), which the crash
attribution relies on (`workers.lease.partition`). (Its text is built from the constant column lists
only; every value is a bound parameter.)"""

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


class Stored(msgspec.Struct, frozen=True):
    claimed: list[Claimed]
    """Deliveries of events first stored now: claimed in the same transaction."""
    waiting: list[Claimed]
    """Deliveries of events first stored now, inserted unclaimed (attempts 0): an ordered handler's whose
    key is busy (or any on SQLite), which `workers.lease.claim` claims in key order, or a paused handler's."""
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
    settings = context.settings.handlers
    ordered = any(spec.ordering_key for spec in context.registry.all())
    # Ordered handlers: a transaction, so their key locks come before the insert (`store_events`).
    with context.connections.transaction() if ordered else context.connections.one_statement() as session:
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
    pg = postgres(session)  # PostgreSQL claims keyed deliveries as it inserts them; SQLite claims them after
    rows: list[dict[str, Any]] = []
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
        keys = _ordering_keys(row, matching)
        planned[event.id] = [
            {
                "event_id": event.id,
                "handler": spec.name,
                "status": DeliveryStatus.PENDING,
                "attempts": 1 if claiming and (pg or spec.name not in keys) else 0,
                "max_attempts": spec.max_attempts or default_max_attempts,
                "lease_until": None,  # set by the database (`_insert`)
                "lease_owner": owner if claiming and (pg or spec.name not in keys) else None,
                "last_started_at": now if claiming and (pg or spec.name not in keys) else None,
                "created_at": now,
                "updated_at": now,
                "ordering_key": keys.get(spec.name),
                "ordering_sent_at": row["sent_at"] if spec.name in keys else None,
                "ordering_received_at": row["received_at"] if spec.name in keys else None,
            }
            for spec in matching
        ]
    if not rows:
        return Stored([], [], {}, [])
    deliveries = [d for ds in planned.values() for d in ds]
    if pg and claiming:
        lock_keys(session, sorted({str(d["handler"]) for d in deliveries if d["ordering_key"] is not None}))
    inserted, fresh = _insert(session, rows, deliveries, lease)
    # Not claiming (`lease` None): every delivery is listed in `claimed`, as inserted (attempts 0).
    claimed = in_key_order([c for c in fresh if c.attempts or not claiming])
    waiting = sorted((c for c in fresh if claiming and not c.attempts), key=lambda c: c.id)
    ids = [event.id for event in events]
    left = [event_id for event_id in ids if event_id not in inserted]
    earlier = list(session.scalars(select(EventRow.id).where(EventRow.id.in_(left)))) if left else []
    stored = {str(row["id"]): msgspec.convert(row, StoredEvent) for row in rows if row["id"] in inserted}
    return Stored(claimed, waiting, stored, [event_id for event_id in ids if event_id in set(earlier)])


def _ordering_keys(row: dict[str, Any], matching: Sequence[HandlerSpec]) -> dict[str, str]:
    """Each ordered handler's key for this event, computed once as it is stored. A key function that
    raises leaves the delivery without a key: it runs, and fails with that error (`workers.deliver`)."""
    ordered = [spec for spec in matching if spec.ordering_key is not None]
    if not ordered:
        return {}
    event = build_event(msgspec.convert(row, StoredEvent), 0, "")
    keys: dict[str, str] = {}
    for spec in ordered:
        try:
            key = spec.key_of(event)
        except Exception:  # noqa: BLE001, S112 - the delivery reports it when it runs
            continue
        if key is not None:
            keys[spec.name] = key
    return keys


def _insert(
    session: Session, rows: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]], lease: float | None
) -> tuple[set[str], list[Claimed]]:
    """Insert events, then the deliveries of those inserted now, leased for `lease` seconds (None: unclaimed);
    returns (ids inserted, deliveries inserted)."""
    if not postgres(session):
        inserted = _insert_events(session, rows)
        if lease is not None:  # SQLite runs in this process: one in-process read of its clock
            lease_until = session.scalar(select(db_now(lease)))
            deliveries = [{**d, "lease_until": lease_until if d["attempts"] else None} for d in deliveries]
        planned = [d for d in deliveries if d["event_id"] in inserted]
        return inserted, _unclaim_paused(session, _insert_deliveries(session, planned))
    params: dict[str, Any] = {"lease_seconds": lease, **arrays(rows, EVENT_COLUMNS)}
    params.update(arrays(deliveries, DELIVERY_COLUMNS, "d_"))
    inserted, claimed = set(), []
    for event_id, delivery_id, handler, attempts, max_attempts, key, sent_at, received_at in session.execute(
        _PG_STORE_AND_CLAIM, params
    ):
        inserted.add(str(event_id))
        if delivery_id is not None:
            claimed.append(
                Claimed(
                    int(delivery_id),
                    str(event_id),
                    str(handler),
                    int(attempts),
                    int(max_attempts),
                    key,
                    sent_at,
                    received_at,
                )
            )
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


def _unclaim_paused(session: Session, claimed: list[Claimed]) -> list[Claimed]:
    """SQLite: a paused handler's deliveries just inserted claimed are made unclaimed, in the same transaction
    (it holds SQLite's one write lock since the insert, so a pause committed before it is seen)."""
    if not claimed:
        return claimed
    paused = set(session.scalars(select(HandlerPauseRow.handler)))
    unclaim = [c.id for c in claimed if c.attempts and c.handler in paused]
    if not unclaim:
        return claimed
    session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.id.in_(unclaim))
        .values(attempts=0, lease_until=None, lease_owner=None, last_started_at=None)
    )
    unclaimed = set(unclaim)
    return [Claimed(c.id, c.event_id, c.handler, 0, c.max_attempts) if c.id in unclaimed else c for c in claimed]


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
