"""`/ui/events`: stored events with the filters of `GET /v1/events` in the URL, in keyset pages.

The same parsing, cursors and query as the API (`EventFilter`,
`service.api.cursors`, `service.api.reads.list_events`), so a page of the
console is exactly a page of the API. A bad filter shows the form again with
what was wrong, as a 400.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from schemas.errors import Invalid
from schemas.tables import EventStatus
from service.api.cursors import decode_cursor, encode_cursor
from service.api.filters import EventFilter
from service.api.params import DEFAULT_LIMIT
from service.api.reads import list_events
from service.console.web import Console, Viewer, page, pager_links

FILTERS = ("source", "action", "status", "since", "until")


@get("/events", sync_to_thread=True)
def events_page(request: Request[Any, Any, Any], console: Console, viewer: Viewer) -> Template:
    given = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    cursor = request.query_params.get("cursor")
    context: dict[str, Any] = {
        "filters": given,
        "statuses": EventStatus.ALL,
        "events": [],
        **pager_links(given, None, None),
    }
    try:
        where = EventFilter.parse(**{name: value or None for name, value in given.items()})
        query = where.fingerprint("desc")
        after = decode_cursor(cursor, "desc", query) if cursor else None
    except Invalid as exc:
        return page("events.html", viewer, title="Events", active="events", status=400, problem=exc.detail, **context)
    found = list_events(
        console.api.engine, where, order="desc", limit=DEFAULT_LIMIT, after=after, payload=False, deliveries=False
    )
    context["events"] = found.events
    last = found.events[-1] if found.more else None
    position = None if last is None else encode_cursor(last.received_at, last.id, "desc", query)
    context.update(pager_links(given, cursor, position))
    return page("events.html", viewer, title="Events", active="events", **context)
