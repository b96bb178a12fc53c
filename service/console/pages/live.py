"""`/ui/live`: a live tail; `/ui/live/stream` feeds it the Server-Sent Events of `GET /v1/stream`.

The stream is the API's own generator (`service.api.routes.stream.event_stream`),
behind the console session instead of an API key (a browser's EventSource
cannot send one). The page's filters go to the stream; the script adds each
event as a row at the top, and `EventSource` reconnects with `Last-Event-ID`
by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, get
from litestar.response import Stream, Template

from schemas.errors import Invalid
from schemas.tables import EventStatus
from service.api.filters import EventFilter
from service.api.reads import newest_seq
from service.api.routes.stream import event_stream, parse_last_event_id
from service.console.web import Console, Viewer, page, query_string

FILTERS = ("source", "action", "status")


def _given(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in FILTERS}


@get("/live", sync_to_thread=False)
def live_page(request: Request[Any, Any, Any], viewer: Viewer) -> Template:
    given = _given(request)
    try:
        EventFilter.parse(**{name: value or None for name, value in given.items()})
    except Invalid as exc:
        return page(
            "live.html",
            viewer,
            title="Live tail",
            active="live",
            status=400,
            problem=exc.detail,
            filters=given,
            statuses=EventStatus.ALL,
            stream_query="",
        )
    return page(
        "live.html",
        viewer,
        title="Live tail",
        active="live",
        filters=given,
        statuses=EventStatus.ALL,
        stream_query=query_string(given),
    )


@get("/live/stream")
async def live_stream(request: Request[Any, Any, Any], console: Console, viewer: Viewer) -> Stream:
    given = _given(request)
    where = EventFilter.parse(**{name: value or None for name, value in given.items()})
    resume = parse_last_event_id(request.headers.get("last-event-id"))
    last = resume if resume is not None else await asyncio.to_thread(newest_seq, console.api.engine)
    return Stream(
        event_stream(console.api, where, last, payload=False),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
