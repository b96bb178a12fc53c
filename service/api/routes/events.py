"""`GET /v1/events`: stored events, newest first, in keyset pages.

Handlers are sync and run in a worker thread (`sync_to_thread=True`), so a
slow query never holds the event loop that ingest shares. A page with
payloads or headers ends early at `[server] max_page_bytes` (its
`next_cursor` gives the rest), so no page loads more than that.
"""

from __future__ import annotations

from schemas.api import EventPage
from service.api.cursors import decode_cursor
from service.api.filters import EventFilter
from service.api.params import EVENTS, Paging, SelectParam, keyset_list, parse_select
from service.api.reads import list_events
from service.api.state import Api


@keyset_list(
    "/events",
    EVENTS,
    summary="List stored events, newest first (keyset pages)",
    operation_id="ListEvents",
)
def list_events_route(api: Api, where: EventFilter, paging: Paging, select_: SelectParam = None) -> EventPage:
    extras = parse_select(select_)
    page = list_events(
        api.engine,
        where,
        order=paging.order,
        limit=paging.limit,
        after=paging.after(decode_cursor),
        payload="payload" in extras,
        deliveries="deliveries" in extras,
        headers="headers" in extras,
        max_bytes=api.settings.server.max_page_bytes,
    )
    last = page.events[-1] if page.more else None
    return EventPage(data=page.events, meta=paging.meta(None if last is None else (last.received_at, last.id)))
