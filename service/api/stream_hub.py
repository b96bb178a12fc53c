"""One poller per API process for every live stream (`/v1/stream`, the console's live tail).

Each open stream used to poll the database on its own through the default
thread pool, so N readers cost N queries every half second and could starve
the threads the rest of the API needs. The hub reads `seq > head` once every
`POLL_SECONDS` for all of them (payload and headers only when an open stream
asked for them, and then at most `[server] max_page_bytes` a read), waits on
holes in `seq` as one `Cursor`, and fans the rows out; each subscriber
applies its own filters and `select`.

A stream that resumes behind the head (`Last-Event-ID`) first catches up
with its own bounded reads up to the head it joined at, while the hub queues
newer rows for it, then takes the shared feed: nothing is missed or repeated.

Streams are capped per API key (`[server] max_streams_per_key`) and per
process (`[server] max_streams`): one more is 429 `ERR:MSG:RATELIMITTED`
before the stream opens. A subscriber that falls `MAX_BUFFERED_BYTES` behind
(a client that stopped reading) is closed; it reconnects with
`Last-Event-ID` and catches up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import structlog
from sqlalchemy.engine import Engine

from schemas.errors import RateLimited
from service.api.filters import EventFilter
from service.api.reads import StreamRow, events_after, newest_seq
from service.metrics import STREAM_POLLS, STREAMS_OPEN

log = structlog.get_logger("hookyard.api.stream")

POLL_SECONDS = 0.5
BATCH = 500
"""Rows read per poll (or per catch-up read), at most."""
GAP_SECONDS = 2.0
"""How long a hole in `seq` is waited on before the streams pass it."""
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
"""The reconnect delay suggested to clients."""
START_SECONDS = 30.0
"""A stream admitted but never read from for this long (its client left before the body) gives its slot back."""
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
"""Bytes of messages queued for one slow subscriber before it is closed (it reconnects and catches up)."""

_encode = msgspec.json.Encoder().encode


class Cursor:
    """A position in `seq`, and the hole it is waiting on, if any."""

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


def sse_message(row: StreamRow, *, payload: bool, headers: bool) -> bytes:
    """One SSE message; the row may carry more (payload, headers) than this subscriber selected."""
    event = row.event
    if (not payload and event.payload is not msgspec.UNSET) or (not headers and event.headers is not msgspec.UNSET):
        event = msgspec.structs.replace(
            event,
            payload=event.payload if payload else msgspec.UNSET,
            headers=event.headers if headers else msgspec.UNSET,
        )
    return b"id: %d\nevent: event\ndata: %s\n\n" % (row.seq, _encode(event))


@dataclass(eq=False)
class Subscriber:
    key: str
    where: EventFilter
    last: int
    """The last `seq` this stream has read itself (catching up, sent or dropped by its filters)."""
    payload: bool
    headers: bool
    joined: int | None = None
    """The hub's head when this stream joined: it reads `(last, joined]` itself, the hub feeds it the rest."""
    fed: int = 0
    """The last `seq` of the shared feed this stream has taken."""
    admitted: float = field(default_factory=time.monotonic)
    started: bool = False
    closed: bool = False
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, rows: list[StreamRow]) -> None:
        """Queue the shared feed's rows that are new to this stream and pass its filters."""
        if self.joined is None or self.closed:
            return
        for row in rows:
            if row.seq <= self.fed:
                continue
            self.fed = row.seq
            event = row.event
            if self.where.matches(event.source, event.action, event.status, event.received_at):
                message = sse_message(row, payload=self.payload, headers=self.headers)
                self.pending.append(message)
                self.pending_bytes += len(message)
        if self.pending_bytes > MAX_BUFFERED_BYTES:
            self.closed = True  # it stopped reading; it reconnects with Last-Event-ID
        if self.pending or self.closed:
            self.wake.set()


class StreamHub:
    def __init__(
        self, engine: Engine, closing: threading.Event, *, max_streams: int, max_per_key: int, max_bytes: int
    ) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        """Bytes of payloads and headers one read loads at most (`[server] max_page_bytes`)."""
        self.closing = closing
        self.max_streams = max_streams
        self.max_per_key = max_per_key
        self.subscribers: list[Subscriber] = []
        self.polls = 0
        """Database reads of the shared feed so far (also `hookyard_stream_polls_total`)."""
        self._cursor: Cursor | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    def admit(self, key: str, where: EventFilter, last: int, *, payload: bool, headers: bool) -> Subscriber:
        """A slot for one stream, or `RateLimited` (429) over the key's or the process's cap."""
        self._release_unstarted()
        mine = sum(1 for subscriber in self.subscribers if subscriber.key == key)
        if mine >= self.max_per_key:
            raise RateLimited.streams(
                f"at most {self.max_per_key} open streams per API key", limit=self.max_per_key, count=mine
            )
        if len(self.subscribers) >= self.max_streams:
            raise RateLimited.streams(
                f"at most {self.max_streams} open streams on this server process",
                limit=self.max_streams,
                count=len(self.subscribers),
            )
        subscriber = Subscriber(key=key, where=where, last=last, payload=payload, headers=headers)
        self.subscribers.append(subscriber)
        STREAMS_OPEN.inc()
        return subscriber

    def release(self, subscriber: Subscriber) -> None:
        subscriber.closed = True
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)
            STREAMS_OPEN.dec()

    def _release_unstarted(self) -> None:
        now = time.monotonic()
        for subscriber in list(self.subscribers):
            if not subscriber.started and now - subscriber.admitted > START_SECONDS:
                self.release(subscriber)

    async def _join(self, subscriber: Subscriber) -> None:
        """Start the shared poller if needed; the subscriber reads up to the head it joins at by itself."""
        async with self._starting:  # two first streams at once: one head, one poller
            if self._cursor is None:
                self._cursor = Cursor(await asyncio.to_thread(newest_seq, self.engine))
            subscriber.joined = self._cursor.last
            subscriber.fed = max(subscriber.last, subscriber.joined)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._poll_forever())

    async def _poll_forever(self) -> None:
        """One read per `POLL_SECONDS` for every stream of this process, while any is open."""
        assert self._cursor is not None
        cursor = self._cursor
        failing = False
        while self.subscribers and not self.closing.is_set():
            payload = any(s.payload for s in self.subscribers)
            headers = any(s.headers for s in self.subscribers)
            try:
                rows, more = await asyncio.to_thread(
                    events_after,
                    self.engine,
                    cursor.last,
                    BATCH,
                    payload=payload,
                    headers=headers,
                    max_bytes=self.max_bytes,
                )
                failing = False
            except Exception as exc:  # noqa: BLE001 - the database is away: the streams wait, then resume
                if not failing:  # once per outage, not twice a second
                    log.warning("stream_poll_failed", error=type(exc).__name__)
                failing = True
                rows, more = [], False
            self.polls += 1
            STREAM_POLLS.inc()
            ready = cursor.take(rows, time.monotonic())
            if ready:
                for subscriber in list(self.subscribers):
                    subscriber.offer(ready)
            self._release_unstarted()
            if not more:
                await asyncio.sleep(POLL_SECONDS)
        for subscriber in self.subscribers:
            subscriber.wake.set()  # closing: every stream ends within a poll
        self._task = None
        self._cursor = None  # the next stream starts from the newest row again

    async def messages(self, subscriber: Subscriber) -> AsyncIterator[bytes]:
        """The SSE body of one admitted stream; gives its slot back however it ends."""
        subscriber.started = True
        try:
            yield b"retry: %d\n\n" % RETRY_MS
            await self._join(subscriber)
            async for chunk in self._catch_up(subscriber):
                yield chunk
            quiet_since = time.monotonic()
            while not subscriber.closed and not self.closing.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(KEEPALIVE_SECONDS, POLL_SECONDS * 4)):
                        await subscriber.wake.wait()
                subscriber.wake.clear()
                if subscriber.pending:
                    chunk = b"".join(subscriber.pending)
                    subscriber.pending.clear()
                    subscriber.pending_bytes = 0
                    yield chunk
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    yield b": keep-alive\n\n"
                    quiet_since = time.monotonic()
        finally:
            self.release(subscriber)
            log.debug("stream_closed", last_event_id=subscriber.last)

    async def _catch_up(self, subscriber: Subscriber) -> AsyncIterator[bytes]:
        """Rows `(last, joined]` for a stream that resumed behind the head, in bounded reads."""
        joined = subscriber.joined
        assert joined is not None
        while subscriber.last < joined and not subscriber.closed and not self.closing.is_set():
            rows, _ = await asyncio.to_thread(
                events_after,
                self.engine,
                subscriber.last,
                BATCH,
                payload=subscriber.payload,
                headers=subscriber.headers,
                up_to=joined,
                max_bytes=self.max_bytes,
            )
            if not rows:
                break
            chunks = []
            for row in rows:
                subscriber.last = row.seq
                event = row.event
                if subscriber.where.matches(event.source, event.action, event.status, event.received_at):
                    chunks.append(sse_message(row, payload=subscriber.payload, headers=subscriber.headers))
            if chunks:
                yield b"".join(chunks)
        # Rows the hub queued meanwhile follow: those are all past `joined`.
        subscriber.last = max(subscriber.last, joined)
