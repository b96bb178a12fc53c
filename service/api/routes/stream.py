"""`GET /v1/stream`: Server-Sent Events of newly stored events, with the list's filters.

Each message's `id:` is the event's `seq` (store order); a client that
reconnects with `Last-Event-ID` resumes after that `seq`. Every stream of
the process is fed by one poller (`service.api.stream_hub`), which also caps
how many are open per API key and per process (429 before the stream opens),
ends them when the server is asked to stop (clients then reconnect with
`Last-Event-ID`), and sends a `: keep-alive` comment every 15 s so proxies
keep an idle stream open.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Stream

from schemas.errors import Invalid
from service.api.docs import error_responses
from service.api.filters import EventFilter
from service.api.params import EVENTS, SelectParam, parse_select
from service.api.reads import newest_seq
from service.api.state import Api, ApiState

_SEQ = re.compile(r"[0-9]{1,18}")


def parse_last_event_id(value: str | None) -> int | None:
    """The `seq` a reconnecting client saw last; None when it sent none."""
    if value is None or not value.strip():
        return None
    if not _SEQ.fullmatch(value.strip()):
        raise Invalid("LAST_EVENT_ID", "Last-Event-ID must be an event seq (an integer)")
    return int(value.strip())


async def open_stream(
    api: ApiState, key: str, where: EventFilter, last_event_id: str | None, *, payload: bool, headers: bool = False
) -> Stream:
    """A live stream for `key` (an API key's name, or a console user's), or 429 over its caps."""
    resume = parse_last_event_id(last_event_id)
    last = resume if resume is not None else await asyncio.to_thread(newest_seq, api.engine)
    subscriber = api.streams.admit(key, where, last, payload=payload, headers=headers)
    return Stream(
        api.streams.messages(subscriber),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@get(
    "/stream",
    summary="Server-Sent Events of newly stored events (same filters as the list)",
    description="`id:` is the event's store sequence; reconnect with `Last-Event-ID` to miss nothing. "
    "Each `data:` is an event object as in the list. A `: keep-alive` comment comes every 15 s. "
    "Open streams are capped per API key and per server process ([server] max_streams_per_key, "
    "max_streams): one more is 429.",
    operation_id="StreamEvents",
    media_type="text/event-stream",
    responses=error_responses(400),
    dependencies={"where": EVENTS},
)
async def stream_route(
    api: Api,
    request: Request[Any, Any, Any],
    where: EventFilter,
    select_: SelectParam = None,
    last_event_id: Annotated[
        str | None, Parameter(header="Last-Event-ID", description="Resume after this event `seq`")
    ] = None,
) -> Stream:
    extras = parse_select(select_)
    if "deliveries" in extras:
        raise Invalid("SELECT", "select: the stream can include payload and headers, not deliveries")
    key = str(request.scope.get("state", {}).get("api_key", ""))
    return await open_stream(api, key, where, last_event_id, payload="payload" in extras, headers="headers" in extras)
