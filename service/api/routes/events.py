"""`GET /v1/events`: stored events, newest first, in keyset pages.

Handlers are sync and run in a worker thread (`sync_to_thread=True`), so a
slow query never holds the event loop that ingest shares. A page with
payloads or headers ends early at `[server] max_page_bytes` (its
`next_cursor` gives the rest), so no page loads more than that.
"""

from __future__ import annotations

from litestar import get

from schemas.api import EventPage, PageMeta
from service.api.cursors import decode_cursor, encode_cursor
from service.api.docs import error_responses
from service.api.filters import EventFilter
from service.api.params import (
    DEFAULT_LIMIT,
    ActionParam,
    CursorParam,
    LimitParam,
    OrderParam,
    SelectParam,
    SinceParam,
    SourceParam,
    StatusParam,
    UntilParam,
    parse_select,
)
from service.api.reads import list_events
from service.api.state import Api


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
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    order: OrderParam = "desc",
    select_: SelectParam = None,
) -> EventPage:
    where = EventFilter.parse(source=source, action=action, status=status, since=since, until=until)
    extras = parse_select(select_)
    query = where.fingerprint(order)
    after = None if cursor is None else decode_cursor(cursor, order, query)
    page = list_events(
        api.engine,
        where,
        order=order,
        limit=limit,
        after=after,
        payload="payload" in extras,
        deliveries="deliveries" in extras,
        headers="headers" in extras,
        max_bytes=api.settings.server.max_page_bytes,
    )
    next_cursor = None
    if page.more:
        last = page.events[-1]
        next_cursor = encode_cursor(last.received_at, last.id, order, query)
    return EventPage(data=page.events, meta=PageMeta(next_cursor=next_cursor, limit=limit))
