"""Blocking database reads behind the API; callers run them in a worker thread.

Lists are keyset pages over `(received_at, id)`: a row comparison the
`(filter, received_at, id)` indexes serve, so page 10,000 costs what page 1
costs. Only the columns a page shows are read (`body` never, `payload` only
when asked for).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.engine import Connection, Engine

from schemas.api import Delivery, Event
from schemas.tables import DeliveryRow, EventRow, UTCDateTime
from service.api.filters import EventFilter

_EVENT_COLUMNS = (
    EventRow.seq,
    EventRow.id,
    EventRow.source,
    EventRow.action,
    EventRow.status,
    EventRow.sent_at,
    EventRow.received_at,
)


class Page(msgspec.Struct):
    events: list[Event]
    more: bool
    """True when rows follow the last one of this page."""


_decode_headers = msgspec.json.Decoder(dict[str, str]).decode


def _event(row: Any, payload: str | None = None) -> Event:
    event = Event(
        id=row.id,
        source=row.source,
        action=row.action,
        status=row.status,
        sent_at=datetime.fromtimestamp(row.sent_at, UTC),
        received_at=row.received_at,
    )
    if payload is not None:
        event.payload = msgspec.Raw(payload.encode("utf-8"))
    if "headers" in row._fields:
        event.headers = _decode_headers(row.headers) if row.headers else {}
    return event


def _delivery(row: Any) -> Delivery:
    return Delivery(
        handler=row.handler,
        status=row.status,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        last_error=row.last_error,
        updated_at=row.updated_at,
        created_at=row.created_at,
        last_started_at=row.last_started_at,
        last_duration_ms=row.last_duration_ms,
        next_attempt_at=row.next_attempt_at,
    )


def _columns(*, payload: bool, headers: bool) -> list[Any]:
    columns: list[Any] = list(_EVENT_COLUMNS)
    if payload:
        columns.append(EventRow.payload)
    if headers:
        columns.append(EventRow.headers)
    return columns


def page_query(
    where: EventFilter,
    *,
    order: str,
    limit: int,
    after: tuple[datetime, str] | None,
    payload: bool,
    headers: bool = False,
) -> Select[*tuple[Any, ...]]:
    """One keyset page (plus one row, to know whether another page follows)."""
    columns = _columns(payload=payload, headers=headers)
    query = select(*columns).where(*where.clauses())
    key = tuple_(EventRow.received_at, EventRow.id)
    if after is not None:
        position = tuple_(literal(after[0], UTCDateTime()), literal(after[1]))
        query = query.where(key > position if order == "asc" else key < position)
    if order == "asc":
        query = query.order_by(EventRow.received_at.asc(), EventRow.id.asc())
    else:
        query = query.order_by(EventRow.received_at.desc(), EventRow.id.desc())
    return query.limit(limit + 1)


def list_events(
    engine: Engine,
    where: EventFilter,
    *,
    order: str,
    limit: int,
    after: tuple[datetime, str] | None,
    payload: bool,
    deliveries: bool,
    headers: bool = False,
) -> Page:
    query = page_query(where, order=order, limit=limit, after=after, payload=payload, headers=headers)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        more = len(rows) > limit
        events = [_event(row, row.payload if payload else None) for row in rows[:limit]]
        if deliveries and events:
            by_event = deliveries_of(connection, [event.id for event in events])
            for event in events:
                event.deliveries = by_event.get(event.id, [])
    return Page(events, more)


def deliveries_of(connection: Connection, event_ids: Sequence[str]) -> dict[str, list[Delivery]]:
    found: dict[str, list[Delivery]] = {}
    table = DeliveryRow.__table__
    rows = connection.execute(
        select(table).where(table.c.event_id.in_(event_ids)).order_by(table.c.event_id, table.c.handler)
    )
    for row in rows:
        found.setdefault(row.event_id, []).append(_delivery(row))
    return found


def get_event(engine: Engine, event_id: str, *, headers: bool = False) -> Event | None:
    with engine.connect() as connection:
        columns = _columns(payload=True, headers=headers)
        row = connection.execute(select(*columns).where(EventRow.id == event_id)).first()
        if row is None:
            return None
        event = _event(row, row.payload)
        event.deliveries = deliveries_of(connection, [event_id]).get(event_id, [])
    return event


def newest_seq(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(EventRow.seq), 0))).scalar_one())


class StreamRow(msgspec.Struct):
    seq: int
    event: Event


def events_after(engine: Engine, seq: int, limit: int, *, payload: bool, headers: bool = False) -> list[StreamRow]:
    """Rows stored after `seq`, in store order, unfiltered (the stream filters them)."""
    columns = _columns(payload=payload, headers=headers)
    with engine.connect() as connection:
        rows = connection.execute(select(*columns).where(EventRow.seq > seq).order_by(EventRow.seq).limit(limit)).all()
    return [StreamRow(row.seq, _event(row, row.payload if payload else None)) for row in rows]
