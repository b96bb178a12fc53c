"""`GET /v1/stream`: Server-Sent Events of newly stored events, with the list's filters.

Each message's `id:` is the event's `seq` (store order). The stream polls
`seq > last` every `POLL_SECONDS` in a worker thread, at most `BATCH` rows a
poll (a primary-key range scan), and filters those rows in Python, so
`last` advances past rows the filters drop and a poll never rescans them.
A client that reconnects with `Last-Event-ID` resumes after that `seq`.

Sequence numbers can commit out of order on PostgreSQL (two workers storing
at once), so a hole in the numbers is waited on for up to `GAP_SECONDS`
before the stream moves past it: a row that commits late is still sent, in
order. Holes that never fill (a rolled-back insert) cost that wait once.
A comment line every `KEEPALIVE_SECONDS` keeps proxies from closing an idle
stream; the generator stops when the client goes away, and within a poll
when the server is asked to stop (`ApiState.closing`), so a shutdown does
not wait out its grace period on open streams; clients then reconnect with
`Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Stream

from schemas.errors import Invalid
from service.api.docs import error_responses
from service.api.filters import EventFilter
from service.api.params import (
    ActionParam,
    SelectParam,
    SinceParam,
    SourceParam,
    StatusParam,
    UntilParam,
    parse_select,
)
from service.api.reads import StreamRow, events_after, newest_seq
from service.api.state import Api

log = structlog.get_logger("hookyard.api.stream")

POLL_SECONDS = 0.5
BATCH = 500
"""Rows read per poll, at most."""
GAP_SECONDS = 2.0
"""How long a hole in `seq` is waited on before the stream passes it."""
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
"""The reconnect delay suggested to clients."""

_encode = msgspec.json.Encoder().encode
_SEQ = re.compile(r"[0-9]{1,18}")


class Cursor:
    """The stream's position, and the hole it is waiting on, if any."""

    def __init__(self, last: int) -> None:
        self.last = last
        self._gap: tuple[int, float] | None = None

    def take(self, rows: list[StreamRow], now: float) -> list[StreamRow]:
        """The rows that may go out now, in order; advances `last` past them."""
        ready = []
        for row in rows:
            expected = self.last + 1
            if row.seq > expected:
                if self._gap is None or self._gap[0] != expected:
                    self._gap = (expected, now)
                if now - self._gap[1] < GAP_SECONDS:
                    break
            self._gap = None
            self.last = row.seq
            ready.append(row)
        return ready


def parse_last_event_id(value: str | None) -> int | None:
    """The `seq` a reconnecting client saw last; None when it sent none."""
    if value is None or not value.strip():
        return None
    if not _SEQ.fullmatch(value.strip()):
        raise Invalid("LAST_EVENT_ID", "Last-Event-ID must be an event seq (an integer)")
    return int(value.strip())


def sse_message(row: StreamRow) -> bytes:
    return b"id: %d\nevent: event\ndata: %s\n\n" % (row.seq, _encode(row.event))


async def event_stream(
    api: Api, where: EventFilter, last: int, payload: bool, headers: bool = False
) -> AsyncIterator[bytes]:
    cursor = Cursor(last)
    engine = api.engine
    quiet_since = time.monotonic()
    yield b"retry: %d\n\n" % RETRY_MS
    try:
        while not api.closing.is_set():
            rows = await asyncio.to_thread(events_after, engine, cursor.last, BATCH, payload=payload, headers=headers)
            chunks = [
                sse_message(row)
                for row in cursor.take(rows, time.monotonic())
                if where.matches(row.event.source, row.event.action, row.event.status, row.event.received_at)
            ]
            if chunks:
                yield b"".join(chunks)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            if len(rows) < BATCH:
                await asyncio.sleep(POLL_SECONDS)
    finally:
        log.debug("stream_closed", last_event_id=cursor.last)


@get(
    "/stream",
    summary="Server-Sent Events of newly stored events (same filters as the list)",
    description="`id:` is the event's store sequence; reconnect with `Last-Event-ID` to miss nothing. "
    "Each `data:` is an event object as in the list. A `: keep-alive` comment comes every 15 s.",
    operation_id="StreamEvents",
    media_type="text/event-stream",
    responses=error_responses(400),
)
async def stream_route(
    api: Api,
    request: Request[Any, Any, Any],
    source: SourceParam = None,
    action: ActionParam = None,
    status: StatusParam = None,
    since: SinceParam = None,
    until: UntilParam = None,
    select_: SelectParam = None,
    last_event_id: Annotated[
        str | None, Parameter(header="Last-Event-ID", description="Resume after this event `seq`")
    ] = None,
) -> Stream:
    where = EventFilter.parse(source=source, action=action, status=status, since=since, until=until)
    extras = parse_select(select_)
    if "deliveries" in extras:
        raise Invalid("SELECT", "select: the stream can include payload and headers, not deliveries")
    resume = parse_last_event_id(last_event_id)
    last = resume if resume is not None else await asyncio.to_thread(newest_seq, api.engine)
    return Stream(
        event_stream(api, where, last, "payload" in extras, "headers" in extras),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
