"""Blocking database reads behind the API and the console; callers run them in a worker thread.

Lists are keyset pages over `(received_at, id)` (events, rejections) or
`(updated_at, id)` (deliveries): a row comparison the `(filter, time, id)`
indexes serve, so page 10,000 costs what page 1 costs. Only the columns a
page shows are read (`body` never, `payload` only when asked for).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, TypeVarTuple

import msgspec
from sqlalchemy import BigInteger, Select, func, literal, select, text, tuple_
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import InstrumentedAttribute

from schemas.api import Delivery, DeliveryRecord, Event, Rejection
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, RejectionRow, UTCDateTime
from service.api.filters import DeliveryFilter, EventFilter, RejectionFilter

Row = TypeVarTuple("Row")
Record = TypeVar("Record", bound=msgspec.Struct)
Where = TypeVar("Where")

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
    return _keyset(query, EventRow.received_at, EventRow.id, order=order, limit=limit, after=after)


def _keyset(
    query: Select[*Row],
    time_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    *,
    order: str,
    limit: int,
    after: tuple[datetime, Any] | None,
) -> Select[*Row]:
    """Page `query` by (time, id) after the cursor's position, plus one row to know whether more follow."""
    key = tuple_(time_column, id_column)
    if after is not None:
        id_type = BigInteger() if isinstance(after[1], int) else None
        position = tuple_(literal(after[0], UTCDateTime()), literal(after[1], id_type))
        query = query.where(key > position if order == "asc" else key < position)
    if order == "asc":
        return query.order_by(time_column.asc(), id_column.asc()).limit(limit + 1)
    return query.order_by(time_column.desc(), id_column.desc()).limit(limit + 1)


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
    max_bytes: int | None = None,
) -> Page:
    """One page; with payloads or headers, it ends early once they reach `max_bytes` (`more` is then true)."""
    query = page_query(where, order=order, limit=limit, after=after, payload=payload, headers=headers)
    with engine.connect() as connection:
        rows, more = _page_rows(connection, query, limit, max_bytes if payload or headers else None)
        events = [_event(row, row.payload if payload else None) for row in rows]
        if deliveries and events:
            by_event = deliveries_of(connection, [event.id for event in events])
            for event in events:
                event.deliveries = by_event.get(event.id, [])
    return Page(events, more)


STREAM_ROWS = 16
"""Rows fetched at a time while a page with payloads is read (a server-side cursor on PostgreSQL)."""


def _page_rows(
    connection: Connection, query: Select[Any], limit: int, max_bytes: int | None
) -> tuple[Sequence[Any], bool]:
    """Up to `limit` rows of `query` (which asks for one more) and whether more follow.

    With `max_bytes` (a page with payloads or headers), it stops after the row that brings them to
    `max_bytes` (at least one row, so a payload larger than the budget still pages). Rows are then fetched
    a few at a time, so rows never read are never loaded: `limit=1000` of 1 MiB payloads costs the
    budget, not 1 GB."""
    if max_bytes is None:
        everything = connection.execute(query).all()
        return everything[:limit], len(everything) > limit
    result = connection.execution_options(yield_per=STREAM_ROWS).execute(query)
    rows: list[Any] = []
    size = 0
    try:
        for row in result:
            if len(rows) == limit or size >= max_bytes:
                return rows, True  # this row exists: the cursor's next page starts with it
            rows.append(row)
            fields = row._mapping
            size += len(fields.get("payload") or "") + len(fields.get("headers") or "")
    finally:
        result.close()
    return rows, False


def deliveries_of(connection: Connection, event_ids: Sequence[str]) -> dict[str, list[Delivery]]:
    found: dict[str, list[Delivery]] = {}
    table = DeliveryRow.__table__
    rows = connection.execute(
        select(table).where(table.c.event_id.in_(event_ids)).order_by(table.c.event_id, table.c.handler)
    )
    for row in rows:
        found.setdefault(row.event_id, []).append(msgspec.convert(row._mapping, Delivery))
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


def events_after(
    engine: Engine,
    seq: int,
    limit: int,
    *,
    payload: bool,
    headers: bool = False,
    up_to: int | None = None,
    max_bytes: int | None = None,
) -> tuple[list[StreamRow], bool]:
    """Rows stored after `seq` (and up to `up_to`), in store order, unfiltered (the streams filter them),
    and whether more follow. With payloads or headers the read stops at `max_bytes`, as a page does."""
    columns = _columns(payload=payload, headers=headers)
    query = select(*columns).where(EventRow.seq > seq)
    if up_to is not None:
        query = query.where(EventRow.seq <= up_to)
    query = query.order_by(EventRow.seq).limit(limit + 1)
    with engine.connect() as connection:
        rows, more = _page_rows(connection, query, limit, max_bytes if payload or headers else None)
        return [StreamRow(row.seq, _event(row, row.payload if payload else None)) for row in rows], more


class RowPage(msgspec.Struct, Generic[Record]):
    """A keyset page of a list keyed by (time, integer row id): deliveries, rejections."""

    records: list[Record]
    more: bool
    last: tuple[datetime, int] | None
    """The (time, id) of the last record shown, which the next page's cursor continues after."""


@dataclass(frozen=True)
class RowList(Generic[Where, Record]):
    """A list in keyset pages of (time, integer row id): the rows `pick` selects for a filter, as `kind`."""

    pick: Callable[[Where], Select[*tuple[Any, ...]]]
    time_column: InstrumentedAttribute[Any]
    id_column: InstrumentedAttribute[Any]
    kind: type[Record]

    def page_query(
        self, where: Where, *, order: str, limit: int, after: tuple[datetime, int] | None
    ) -> Select[*tuple[Any, ...]]:
        """One keyset page (plus one row, to know whether another page follows)."""
        return _keyset(self.pick(where), self.time_column, self.id_column, order=order, limit=limit, after=after)

    def page(
        self, engine: Engine, where: Where, *, order: str, limit: int, after: tuple[datetime, int] | None
    ) -> RowPage[Record]:
        with engine.connect() as connection:
            rows = connection.execute(self.page_query(where, order=order, limit=limit, after=after)).all()
        shown = [row._mapping for row in rows[:limit]]
        last = (shown[-1][self.time_column.key], shown[-1][self.id_column.key]) if shown else None
        return RowPage([msgspec.convert(row, self.kind) for row in shown], len(rows) > limit, last)


def _deliveries(where: DeliveryFilter) -> Select[*tuple[Any, ...]]:
    """Deliveries, each with its event's source and action (a join on `events.id`)."""
    return (
        select(
            DeliveryRow.id,
            DeliveryRow.event_id,
            EventRow.source,
            EventRow.action,
            DeliveryRow.handler,
            DeliveryRow.status,
            DeliveryRow.attempts,
            DeliveryRow.last_error,
            DeliveryRow.updated_at,
        )
        .join(EventRow, EventRow.id == DeliveryRow.event_id)
        .where(*where.clauses())
    )


DELIVERIES = RowList(_deliveries, DeliveryRow.updated_at, DeliveryRow.id, DeliveryRecord)
"""Newest `updated_at` first by default."""
delivery_page_query = DELIVERIES.page_query
list_deliveries = DELIVERIES.page


DEAD_COUNT_CAP = 10_000
"""Dead deliveries counted per handler at most; past it the console says "10,000+" (the dry run counts all)."""

HANDLER_NAMES = text(
    """
    WITH RECURSIVE names(name) AS (
      SELECT min(handler) FROM deliveries
      UNION ALL
      SELECT (SELECT min(handler) FROM deliveries WHERE handler > names.name) FROM names WHERE names.name IS NOT NULL
    )
    SELECT name FROM names WHERE name IS NOT NULL
    """
)
"""Every handler with deliveries: a skip scan of `ix_deliveries_handler_status_updated`, one probe per name."""


class DeadCount(msgspec.Struct, frozen=True):
    handler: str
    count: int
    capped: bool
    """True when there are more than `count` (= `DEAD_COUNT_CAP`)."""


def dead_by_handler(engine: Engine, cap: int = DEAD_COUNT_CAP) -> list[DeadCount]:
    """Dead deliveries per handler, most first, each count bounded by `cap`, so the cost stays the same
    however many have piled up: one index probe per handler name, then at most `cap` index entries each."""
    with engine.connect() as connection:
        names = list(connection.execute(HANDLER_NAMES).scalars())
        found = []
        for name in names:
            dead = (
                select(literal(1))
                .where(DeliveryRow.handler == name, DeliveryRow.status == DeliveryStatus.DEAD)
                .limit(cap + 1)
                .subquery()
            )
            count = int(connection.execute(select(func.count()).select_from(dead)).scalar_one())
            if count:
                found.append(DeadCount(name, min(count, cap), count > cap))
    return sorted(found, key=lambda group: (-group.count, group.handler))


def _rejections(where: RejectionFilter) -> Select[*tuple[Any, ...]]:
    return select(
        RejectionRow.id,
        RejectionRow.source,
        RejectionRow.status,
        RejectionRow.code,
        RejectionRow.client_ip,
        RejectionRow.request_id,
        RejectionRow.received_at,
        RejectionRow.count,
    ).where(*where.clauses())


REJECTIONS = RowList(_rejections, RejectionRow.received_at, RejectionRow.id, Rejection)
list_rejections = REJECTIONS.page
