"""The worker's batch statements, one round trip each, in the form each database runs fastest.

PostgreSQL gets one short statement over `unnest()` of array parameters: its
text is the same whatever the batch size, so psycopg's query cache and
PostgreSQL's plan cache both hit. (A multi-row VALUES list is a new, long
statement per batch size that psycopg re-parses every time: a third of a
worker's time on 100-event batches.) SQLite gets SQLAlchemy's Core
`insertmanyvalues` and executemany, which it runs in-process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from schemas.tables import DeliveryRow, EventRow

EVENT_COLUMNS = (
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
)
DELIVERY_COLUMNS = (
    ("event_id", "varchar"),
    ("handler", "varchar"),
    ("status", "varchar"),
    ("attempts", "integer"),
    ("max_attempts", "integer"),
    ("lease_until", "timestamptz"),
    ("last_started_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
OUTCOME_COLUMNS = (
    ("id", "bigint"),
    ("status", "varchar"),
    ("last_error", "text"),
    ("next_attempt_at", "timestamptz"),
    ("last_duration_ms", "float8"),
    ("attempt", "integer"),
    ("refund", "integer"),
)
"""An outcome is written only over the attempt it belongs to (`attempt`), and only while the
delivery is open: a late writer can never overwrite a newer result. `refund` gives back an
attempt that never ran."""


_PG_EVENTS = text(
    "INSERT INTO events (id, source, fingerprint, action, resource, verb, sent_at, received_at, "
    "stored_at, status, request_id, payload, body) SELECT * FROM unnest(CAST(:id AS varchar[]), "
    "CAST(:source AS varchar[]), CAST(:fingerprint AS varchar[]), CAST(:action AS varchar[]), "
    "CAST(:resource AS varchar[]), CAST(:verb AS varchar[]), CAST(:sent_at AS bigint[]), "
    "CAST(:received_at AS timestamptz[]), CAST(:stored_at AS timestamptz[]), CAST(:status AS varchar[]), "
    "CAST(:request_id AS varchar[]), CAST(:payload AS text[]), CAST(:body AS text[])) ON CONFLICT DO "
    "NOTHING RETURNING id"
)
_PG_DELIVERIES = text(
    "INSERT INTO deliveries (event_id, handler, status, attempts, max_attempts, lease_until, "
    "last_started_at, created_at, updated_at) SELECT * FROM unnest(CAST(:event_id AS varchar[]), "
    "CAST(:handler AS varchar[]), CAST(:status AS varchar[]), CAST(:attempts AS integer[]), "
    "CAST(:max_attempts AS integer[]), CAST(:lease_until AS timestamptz[]), CAST(:last_started_at AS "
    "timestamptz[]), CAST(:created_at AS timestamptz[]), CAST(:updated_at AS timestamptz[])) ON CONFLICT "
    "DO NOTHING RETURNING id, event_id, handler, attempts, max_attempts"
)
_PG_OUTCOME_SET = (
    "UPDATE deliveries AS d SET status = u.status, last_error = u.last_error, next_attempt_at = "
    "u.next_attempt_at, last_duration_ms = u.last_duration_ms, attempts = d.attempts - u.refund, "
    "lease_until = NULL, updated_at = :now FROM "
    "unnest(CAST(:id AS bigint[]), CAST(:status AS varchar[]), CAST(:last_error AS text[]), "
    "CAST(:next_attempt_at AS timestamptz[]), CAST(:last_duration_ms AS float8[]), CAST(:attempt AS integer[]), "
    "CAST(:refund AS integer[])) AS u(id, status, last_error, next_attempt_at, last_duration_ms, attempt, refund) "
    "WHERE d.id = u.id AND d.attempts = u.attempt AND d.status IN ('pending', 'retrying')"
)
_PG_OUTCOMES = text(_PG_OUTCOME_SET)
_PG_STORE_AND_CLAIM = text(
    "WITH e AS (INSERT INTO events (id, source, fingerprint, action, resource, verb, sent_at, received_at, "
    "stored_at, status, request_id, payload, body) SELECT * FROM unnest(CAST(:id AS varchar[]), "
    "CAST(:source AS varchar[]), CAST(:fingerprint AS varchar[]), CAST(:action AS varchar[]), "
    "CAST(:resource AS varchar[]), CAST(:verb AS varchar[]), CAST(:sent_at AS bigint[]), "
    "CAST(:received_at AS timestamptz[]), CAST(:stored_at AS timestamptz[]), CAST(:status AS varchar[]), "
    "CAST(:request_id AS varchar[]), CAST(:payload AS text[]), CAST(:body AS text[])) ON CONFLICT DO "
    "NOTHING RETURNING id), "
    "d AS (INSERT INTO deliveries (event_id, handler, status, attempts, max_attempts, lease_until, "
    "last_started_at, created_at, updated_at) SELECT u.* FROM unnest(CAST(:d_event_id AS varchar[]), "
    "CAST(:d_handler AS varchar[]), CAST(:d_status AS varchar[]), CAST(:d_attempts AS integer[]), "
    "CAST(:d_max_attempts AS integer[]), CAST(:d_lease_until AS timestamptz[]), CAST(:d_last_started_at AS "
    "timestamptz[]), CAST(:d_created_at AS timestamptz[]), CAST(:d_updated_at AS timestamptz[])) AS u(event_id, "
    "handler, status, attempts, max_attempts, lease_until, last_started_at, created_at, updated_at) "
    "WHERE u.event_id IN (SELECT id FROM e) ON CONFLICT DO NOTHING "
    "RETURNING id, event_id, handler, attempts, max_attempts) "
    "SELECT e.id, d.id, d.handler, d.attempts, d.max_attempts FROM e LEFT JOIN d ON d.event_id = e.id"
)
_PG_RECORD_COMPLETE = text(
    "WITH o AS (" + _PG_OUTCOME_SET + " RETURNING d.id) "  # noqa: S608 - constants only, values are bound
    "UPDATE events AS e SET status = s.status FROM unnest(CAST(:e_id AS varchar[]), "
    "CAST(:e_status AS varchar[])) AS s(id, status) WHERE e.id = s.id"
)
_PG_STATUS = text("UPDATE events SET status = :status WHERE id = ANY(CAST(:ids AS varchar[]))")


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _columns(rows: Sequence[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name, _ in columns}


def _table(entity: type[EventRow] | type[DeliveryRow]) -> Table:
    return cast(Table, entity.__table__)


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert, skipping ids or (source, fingerprint) already stored; returns the ids inserted now."""
    if not rows:
        return set()
    if _postgres(session):
        return set(session.execute(_PG_EVENTS, _columns(rows, EVENT_COLUMNS)).scalars())
    table = _table(EventRow)
    statement = sqlite.insert(table).on_conflict_do_nothing().returning(table.c.id)
    return set(session.execute(statement, list(rows)).scalars())


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> list[tuple[int, str, str, int, int]]:
    """Insert, skipping (event, handler) pairs that exist; returns (id, event_id, handler, attempts, max_attempts)."""
    if not rows:
        return []
    if _postgres(session):
        result = session.execute(_PG_DELIVERIES, _columns(rows, DELIVERY_COLUMNS))
    else:
        table = _table(DeliveryRow)
        statement = (
            sqlite.insert(table)
            .on_conflict_do_nothing()
            .returning(table.c.id, table.c.event_id, table.c.handler, table.c.attempts, table.c.max_attempts)
        )
        result = session.execute(statement, list(rows))
    return [(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in result]


Claim = tuple[int, str, str, int, int]
"""A delivery inserted claimed: (id, event_id, handler, attempts, max_attempts)."""


def store_and_claim(
    session: Session, rows: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]]
) -> tuple[set[str], list[Claim]]:
    """Insert events, then the deliveries of those inserted now; returns (ids inserted, deliveries inserted).

    On PostgreSQL this is ONE statement (data-modifying CTEs), so it is
    atomic even outside a transaction: one round trip stores and claims.
    """
    if not rows:
        return set(), []
    if not _postgres(session):
        inserted = insert_events(session, rows)
        return inserted, insert_deliveries(session, [d for d in deliveries if d["event_id"] in inserted])
    params = _columns(rows, EVENT_COLUMNS)
    params.update({f"d_{name}": [d[name] for d in deliveries] for name, _ in DELIVERY_COLUMNS})
    inserted, claimed = set(), []
    for event_id, delivery_id, handler, attempts, max_attempts in session.execute(_PG_STORE_AND_CLAIM, params):
        inserted.add(str(event_id))
        if delivery_id is not None:
            claimed.append((int(delivery_id), str(event_id), str(handler), int(attempts), int(max_attempts)))
    return inserted, claimed


def record_complete(session: Session, rows: Sequence[dict[str, Any]], status_of: dict[str, str], now: datetime) -> None:
    """Outcomes plus the statuses of their events; on PostgreSQL one statement, atomic by itself."""
    if not _postgres(session):
        record_outcomes(session, rows, now)
        for status in set(status_of.values()):
            set_status(session, status, [event_id for event_id, s in status_of.items() if s == status])
        return
    params = {"now": now, **_columns(rows, OUTCOME_COLUMNS)}
    params.update({"e_id": list(status_of), "e_status": list(status_of.values())})
    session.execute(_PG_RECORD_COMPLETE, params)


def record_outcomes(session: Session, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Set each delivery's outcome (keys of OUTCOME_COLUMNS) and release its lease."""
    if not rows:
        return
    if _postgres(session):
        session.execute(_PG_OUTCOMES, {"now": now, **_columns(rows, OUTCOME_COLUMNS)})
        return
    table = _table(DeliveryRow)
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.attempts == bindparam("b_attempt"),
            # `IN (...)` expands per statement, which executemany cannot do.
            or_(table.c.status == "pending", table.c.status == "retrying"),
        )
        .values(
            status=bindparam("b_status"),
            last_error=bindparam("b_last_error"),
            next_attempt_at=bindparam("b_next_attempt_at"),
            last_duration_ms=bindparam("b_last_duration_ms"),
            attempts=table.c.attempts - bindparam("b_refund"),
            lease_until=None,
            updated_at=now,
        )
    )
    session.execute(statement, [{f"b_{name}": row[name] for name, _ in OUTCOME_COLUMNS} for row in rows])


def set_status(session: Session, status: str, event_ids: Sequence[str]) -> None:
    if not event_ids:
        return
    if _postgres(session):
        session.execute(_PG_STATUS, {"status": status, "ids": list(event_ids)})
        return
    session.execute(update(EventRow).where(EventRow.id.in_(event_ids)).values(status=status))
