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

from sqlalchemy import Table, bindparam, text, update
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
)


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
_PG_OUTCOMES = text(
    "UPDATE deliveries AS d SET status = u.status, last_error = u.last_error, next_attempt_at = "
    "u.next_attempt_at, last_duration_ms = u.last_duration_ms, lease_until = NULL, updated_at = :now FROM "
    "unnest(CAST(:id AS bigint[]), CAST(:status AS varchar[]), CAST(:last_error AS text[]), "
    "CAST(:next_attempt_at AS timestamptz[]), CAST(:last_duration_ms AS float8[])) AS u(id, status, "
    "last_error, next_attempt_at, last_duration_ms) WHERE d.id = u.id"
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
        .where(table.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            last_error=bindparam("b_last_error"),
            next_attempt_at=bindparam("b_next_attempt_at"),
            last_duration_ms=bindparam("b_last_duration_ms"),
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
