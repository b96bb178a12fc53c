"""`GET /v1/events` and `GET /v1/events/{id}`.

Handlers are sync and run in a worker thread (`sync_to_thread=True`), so a
slow query never holds the event loop that ingest shares.
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get
from litestar.params import Parameter

from schemas.api import EventEnvelope, EventPage, EventStatusName, PageMeta
from schemas.ids import is_event_id
from schemas.wire import Codes
from service.api.cursors import CursorError, decode_cursor, encode_cursor
from service.api.docs import error_responses
from service.api.filters import ACTION_FILTER_PATTERN, MAX_ACTION_LENGTH, EventFilter, FilterError
from service.api.reads import get_event, list_events
from service.api.state import Api
from service.errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
SELECTABLE = ("payload", "deliveries")

SourceParam = Annotated[str | None, Parameter(description="Only events from this source (unknown: empty page)")]
ActionParam = Annotated[
    str | None,
    Parameter(
        description="An exact action, `RESOURCE:*` or `*:VERB` (`*` is exactly one part)",
        pattern=ACTION_FILTER_PATTERN,
        max_length=MAX_ACTION_LENGTH,
    ),
]
StatusParam = Annotated[EventStatusName | None, Parameter(description="Only events in this status")]
SinceParam = Annotated[str | None, Parameter(description="ISO 8601; events received at or after it")]
UntilParam = Annotated[str | None, Parameter(description="ISO 8601; events received before it")]
SelectParam = Annotated[
    str | None,
    Parameter(
        query="select",
        description="Comma-separated extras: `payload`, `deliveries` (a leading `-` excludes one)",
    ),
]


def parse_select(value: str | None) -> set[str]:
    chosen: set[str] = set()
    for item in (value or "").split(","):
        name = item.strip()
        if not name:
            continue
        bare = name.removeprefix("-")
        if bare not in SELECTABLE:
            raise ApiError(400, Codes.validation("SELECT"), f"select: {bare!r} is not one of {', '.join(SELECTABLE)}")
        if name.startswith("-"):
            chosen.discard(bare)
        else:
            chosen.add(bare)
    return chosen


def parse_filter(
    source: str | None, action: str | None, status: str | None, since: str | None, until: str | None
) -> EventFilter:
    try:
        return EventFilter.parse(source=source, action=action, status=status, since=since, until=until)
    except FilterError as exc:
        raise ApiError(400, Codes.validation(exc.what), str(exc)) from None


@get(
    "/events",
    sync_to_thread=True,
    summary="List stored events, newest first (keyset pages)",
    operation_id="ListEvents",
    responses=error_responses(400),
)
def list_events_route(
    api: Api,
    source: SourceParam = None,
    action: ActionParam = None,
    status: StatusParam = None,
    since: SinceParam = None,
    until: UntilParam = None,
    limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="Page size, 1-1000")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Parameter(description="`meta.next_cursor` of the previous page")] = None,
    order: Annotated[Literal["desc", "asc"], Parameter(description="`asc`: oldest first")] = "desc",
    select_: SelectParam = None,
) -> EventPage:
    where = parse_filter(source, action, status, since, until)
    extras = parse_select(select_)
    query = where.fingerprint(order)
    after = None
    if cursor is not None:
        try:
            after = decode_cursor(cursor, order, query)
        except CursorError as exc:
            raise ApiError(400, Codes.validation("CURSOR"), str(exc)) from None
    page = list_events(
        api.engine,
        where,
        order=order,
        limit=limit,
        after=after,
        payload="payload" in extras,
        deliveries="deliveries" in extras,
    )
    next_cursor = None
    if page.more:
        last = page.events[-1]
        next_cursor = encode_cursor(last.received_at, last.id, order, query)
    return EventPage(data=page.events, meta=PageMeta(next_cursor=next_cursor, limit=limit))


@get(
    "/events/{event_id:str}",
    sync_to_thread=True,
    summary="One event with its payload and deliveries",
    operation_id="GetEvent",
    responses=error_responses(404),
)
def get_event_route(api: Api, event_id: str) -> EventEnvelope:
    event = get_event(api.engine, event_id) if is_event_id(event_id) else None
    if event is None:
        raise ApiError(404, Codes.NOT_FOUND, "no stored event has this id")
    return EventEnvelope(data=event)
