"""`/ui/live`: a live tail; `/ui/live/stream` feeds it the Server-Sent Events of `GET /v1/stream`.

The stream is the API's own (`service.api.routes.stream.open_stream`, one shared poller),
behind the console session instead of an API key (a browser's EventSource
cannot send one). The page's filters go to the stream; the script adds each
event as a row at the top, and `EventSource` reconnects with `Last-Event-ID`
by itself.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Stream, Template

from schemas.errors import Invalid
from schemas.tables import EventStatus
from service.api.filters import EventFilter
from service.api.routes.stream import open_stream
from service.console.web import Console, Viewer, page, query_string

FILTERS = ("source", "action", "status")


def _given(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in FILTERS}


@get("/live", sync_to_thread=False)
def live_page(request: Request[Any, Any, Any], viewer: Viewer) -> Template:
    given = _given(request)
    problem, stream_query = None, query_string(given)
    try:
        EventFilter.parse(**{name: value or None for name, value in given.items()})
    except Invalid as exc:
        problem, stream_query = exc.detail, ""
    return page(
        "live.html",
        viewer,
        title="Live tail",
        active="live",
        status=200 if problem is None else 400,
        problem=problem,
        filters=given,
        statuses=EventStatus.ALL,
        stream_query=stream_query,
    )


@get("/live/stream")
async def live_stream(request: Request[Any, Any, Any], console: Console, viewer: Viewer) -> Stream:
    given = _given(request)
    where = EventFilter.parse(**{name: value or None for name, value in given.items()})
    # Counted against the signed-in key's stream cap, like its API streams.
    return await open_stream(console.api, viewer.key_name, where, request.headers.get("last-event-id"), payload=False)
