"""`POST /webhooks/{source}`: the checks of CONTRACT sections 4 and 7, in their order.

A raw ASGI handler (mounted in the Litestar app) because this is the hot
path: a header-only signature is checked before any body byte is read, the
size limit is enforced while reading, a body-covering signature right after
the read, the body is decoded once by msgspec on the event loop, the
source's format (`service.ingest.formats`) decides action, time, vendor id
and payload, and the event is handed to the group-commit `EventQueue`. The
202 goes out only once Redis (or the fsync'd spool) holds the event.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from schemas.errors import (
    BadSignature,
    BodyTooLarge,
    Forbidden,
    HookyardError,
    Internal,
    Invalid,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    RequestTimeout,
    Unavailable,
    UnsupportedMediaType,
)
from schemas.ids import new_event_id
from schemas.signatures import SIGNATURE_HEADERS
from schemas.wire import Accepted, Envelope, QueuedEvent
from service import metrics
from service.errors import render
from service.ingest.enqueue import EnqueueResult, EventQueue, QueueUnavailable
from service.ingest.rejections import RejectionLedger
from service.ingest.sources import ClientAddress, Source
from service.limiter import Limiter
from service.request_ids import request_id as make_request_id
from workers.shared import tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

log = structlog.get_logger("hookyard.ingest")

Scope = dict[str, Any]
Message = dict[str, Any]

_encode = msgspec.json.Encoder().encode
_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_decode_any = msgspec.json.Decoder().decode
_JSON_TYPE = re.compile(rb"^application/(json|[a-z0-9.+-]*\+json)\s*(;.*)?$", re.IGNORECASE)
_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_NOT_KEPT = frozenset({"authorization", "cookie", *SIGNATURE_HEADERS})
"""Headers never kept with an event: credentials and signature values (ids and timestamps are kept)."""


class Reply(msgspec.Struct, frozen=True):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IngestApp:
    """The ASGI callable behind `/webhooks/{source}`."""

    def __init__(
        self,
        sources: dict[str, Source],
        queue: EventQueue,
        client_address: ClientAddress,
        max_body_bytes: int,
        body_timeout: float,
        limiter: Limiter | None = None,
        tracer: Tracer | None = None,
        rejections: RejectionLedger | None = None,
    ) -> None:
        self.sources = sources
        self.queue = queue
        self.client_address = client_address
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.limiter = limiter
        self.rejections = rejections
        self.tracer = tracer
        """Set only when tracing is on (workers.shared.tracing)."""
        self._reading: dict[asyncio.Task[Any], float] = {}
        """Requests reading their body, by deadline (`time.monotonic()`): one watchdog task enforces
        `body_timeout` for all of them, since a timer per request (`asyncio.timeout`) costs more under
        uvloop than the rest of the body read."""
        self._timed_out: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self.handle: Callable[[Scope, Any, Any], Awaitable[int]] = self._answer if tracer is None else self._traced
        """The request handler, chosen once: with tracing off the fast path runs no tracing code at all."""
        self._submit: Callable[[QueuedEvent], Awaitable[EnqueueResult]] = (
            queue.submit if tracer is None else self._enqueue_traced
        )
        for name in sources:  # every source's counters exist from the start: rate() and alerts see 0, not nothing
            for counter in (metrics.EVENTS_RECEIVED, metrics.EVENTS_DUPLICATE, metrics.EVENTS_SPOOLED):
                counter.labels(name)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.handle(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Any, send: Any) -> int:
        """The ingest span, child of the sender's `traceparent` when it sent one (W3C trace context)."""
        from opentelemetry.trace import SpanKind  # noqa: PLC0415 - the otel extra, only when tracing is on

        assert self.tracer is not None
        headers = dict(scope["headers"])
        parent = tracing.extract(headers.get(b"traceparent"), headers.get(b"tracestate"))
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
        with self.tracer.start_as_current_span(
            "POST /webhooks/{source}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            status = await self._answer(scope, receive, send)
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("hookyard.source", _label(_source_name(scope), self.sources))
        return status

    async def _enqueue_traced(self, event: QueuedEvent) -> EnqueueResult:
        """The enqueue span; its `traceparent` travels inside the event, so the worker's spans join the trace."""
        from opentelemetry.trace import SpanKind  # noqa: PLC0415 - the otel extra, only when tracing is on

        assert self.tracer is not None
        with self.tracer.start_as_current_span(
            "enqueue", kind=SpanKind.PRODUCER, attributes={"hookyard.event_id": event.id}
        ) as span:
            result = await self.queue.submit(msgspec.structs.replace(event, trace=tracing.current_traceparent()))
            span.set_attribute("hookyard.duplicate", result.duplicate)
            span.set_attribute("hookyard.spooled", result.spooled)
            return result

    async def _answer(self, scope: Scope, receive: Any, send: Any) -> int:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = make_request_id(headers.get(b"x-request-id"))
        source_name = _source_name(scope)
        # Every line inside this request, ours or a library's, carries its request_id (the task's own context).
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            reply = await self._ingest(scope, receive, headers, source_name, request_id)
            response = reply.status, list(reply.headers), reply.body
        except Exception as exc:  # noqa: BLE001 - a bug too is answered with the envelope, never a trace
            error = self._rejected(exc, source_name, request_id)
            if self.rejections is not None:
                self.rejections.record(source_name, error, self._client_ip(scope, headers), request_id)
            response = render(error)
        await _respond(send, *response, request_id)
        metrics.INGEST_LATENCY.observe(time.perf_counter() - started)
        return response[0]

    def _rejected(self, exc: Exception, source_name: str, request_id: str) -> HookyardError:
        """The error to answer with, logged and counted; a bug becomes `Internal`, never a trace."""
        if not isinstance(exc, HookyardError):
            log.error("ingest_failed", request_id=request_id, error_type=type(exc).__name__, exc_info=exc)
            return Internal()
        metrics.EVENTS_REJECTED.labels(_label(source_name, self.sources), exc.meta_code).inc()
        log.info(
            "ingest_rejected",
            request_id=request_id,
            source=source_name[:64],
            status=exc.status,
            code=exc.meta_code,
        )
        return exc

    def _client_ip(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        client = scope.get("client")
        address = self.client_address.resolve(client[0] if client else None, headers.get(b"x-forwarded-for"))
        return "" if address is None else str(address)

    async def _ingest(
        self, scope: Scope, receive: Any, headers: dict[bytes, bytes], source_name: str, request_id: str
    ) -> Reply:
        if scope["method"] != "POST":
            raise MethodNotAllowed("use POST", headers=(("allow", "POST"),))
        source = self.sources.get(source_name)
        if source is None:
            raise NotFound("no such source")
        if source.allow:
            client = scope.get("client")
            address = self.client_address.resolve(client[0] if client else None, headers.get(b"x-forwarded-for"))
            if not source.allows(address):
                raise Forbidden("this address may not send to this source")
        if not source.scheme.needs_body and not source.scheme.verify(headers):
            raise BadSignature("missing or invalid signature")
        if source.rate_per_minute is not None and self.limiter is not None:
            await _check_rate(self.limiter, source.name, source.rate_per_minute, request_id)
        body = await self._read_body(receive, headers)
        if source.scheme.needs_body and not source.scheme.verify(headers, body):
            raise BadSignature("missing or invalid signature")
        if not _JSON_TYPE.match(headers.get(b"content-type", b"").strip()):
            raise UnsupportedMediaType("send application/json")
        event = self._check(body, source, headers, request_id)
        if isinstance(event, str):  # a vendor's set-up handshake: answered, never stored
            log.info("ingest_handshake", request_id=request_id, source=source.name)
            return Reply(200, _TEXT, event.encode("utf-8"))
        event = msgspec.structs.replace(event, headers=_kept_headers(scope["headers"]))
        try:
            result = await self._submit(event)
        except QueueUnavailable:
            raise Unavailable("queue unavailable, retry later") from None
        warnings: dict[str, Any] = {}
        if result.duplicate:
            metrics.EVENTS_DUPLICATE.labels(source.name).inc()
            log.debug("ingest_duplicate", request_id=request_id, event_id=result.id, source=source.name)
            return Reply(200, _JSON, _encode(Envelope(data=Accepted(id=result.id, status="queued", duplicate=True))))
        if result.spooled:
            metrics.EVENTS_SPOOLED.labels(source.name).inc()
            warnings = {"queue": "spooled"}
        metrics.EVENTS_RECEIVED.labels(source.name).inc()
        log.debug("ingest_accepted", request_id=request_id, event_id=result.id, source=source.name)
        accepted = Envelope(data=Accepted(id=result.id, status="queued", duplicate=False), warnings=warnings)
        return Reply(202, _JSON, _encode(accepted))

    async def _read_body(self, receive: Any, headers: dict[bytes, bytes]) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                raise Invalid("CONTENT_LENGTH", "Content-Length is not a number") from None
            if declared_size > self.max_body_bytes:
                raise BodyTooLarge(f"body over {self.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        task = self._watched()
        self._reading[task] = time.monotonic() + self.body_timeout
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Invalid("BODY", "client went away mid-body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise BodyTooLarge(f"body over {self.max_body_bytes} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if task not in self._timed_out:
                raise
            self._timed_out.discard(task)
            if task.uncancel():  # cancelled from outside as well (a shutdown): that one wins
                raise
            raise RequestTimeout("body not received in time") from None
        finally:
            del self._reading[task]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _watched(self) -> asyncio.Task[Any]:
        """This request's task, with the body watchdog running on this loop."""
        task = asyncio.current_task()
        assert task is not None
        watchdog = self._watchdog
        if watchdog is None or watchdog.done() or watchdog.get_loop() is not task.get_loop():
            self._watchdog = asyncio.create_task(self._watch(), context=contextvars.Context())
        return task

    async def _watch(self) -> None:
        """Cancel each body read past its deadline; a quarter of the timeout (at most 1 s) late at most."""
        tick = min(1.0, self.body_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for task, deadline in list(self._reading.items()):
                if deadline <= now and task not in self._timed_out:
                    self._timed_out.add(task)
                    task.cancel()

    def _check(self, body: bytes, source: Source, headers: dict[bytes, bytes], request_id: str) -> QueuedEvent | str:
        """The event this body is, or the text answering a handshake; `Invalid` naming what is wrong."""
        try:
            document = _decode_any(body)
        except msgspec.ValidationError as exc:  # numbers beyond 64-bit / float range
            raise Invalid("NUMBER", f"number out of range: {exc}") from None
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise Invalid("JSON", "body is not valid JSON (UTF-8)") from None
        except RecursionError:
            raise Invalid("JSON", "JSON nested too deeply") from None
        if not isinstance(document, dict):
            raise Invalid("BODY", "body must be a JSON object")
        challenge = source.scheme.handshake(document)
        if challenge is not None:
            return challenge
        located = source.format.read(document, body, headers)
        now_us = time.time_ns() // 1000
        sent_at = located.sent_at
        if sent_at is None:
            sent_at = source.scheme.signed_at(headers) or now_us // 1_000_000
        if source.max_age_seconds is not None and sent_at < time.time() - source.max_age_seconds:
            raise Invalid("SENT_AT", f"sent_at older than {source.max_age_seconds} s")
        return QueuedEvent(
            id=new_event_id(),
            source=source.name,
            fingerprint=_fingerprint(located.vendor_event_id, located.identity),
            received_at_us=now_us,
            request_id=request_id,
            body=body.decode("utf-8"),
            action=located.action,
            sent_at=sent_at,
            whole_body=located.whole_body,
            vendor_event_id=located.vendor_event_id,
        )


def _fingerprint(vendor_event_id: str | None, identity: Any) -> str:
    """The de-duplication key. With a vendor id, that id alone (so a retry with another body is
    still the same event); otherwise the canonical encoding of what the format says the event is
    (sorted keys: whitespace and key order do not make a new event)."""
    if vendor_event_id is not None:
        return hashlib.sha256(b"id\x00" + vendor_event_id.encode("utf-8")).hexdigest()[:32]
    return hashlib.sha256(_encode_sorted(identity)).hexdigest()[:32]


def _kept_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers by lower-case name (repeats joined with ", "), without credentials or signatures."""
    kept: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key in _NOT_KEPT:
            continue
        text = value.decode("latin-1")
        kept[key] = f"{kept[key]}, {text}" if key in kept else text
    return kept


async def _check_rate(limiter: Limiter, source: str, per_minute: int, request_id: str) -> None:
    verdict = await limiter.hit(source, per_minute, request_id)
    if not verdict.allowed:
        raise RateLimited.over(
            f"more than {per_minute} requests a minute for this source",
            limit=per_minute,
            count=verdict.count,
            retry_after=verdict.retry_after,
        )


def _source_name(scope: Scope) -> str:
    """The one path segment after `/webhooks/` (mounted or not); anything else names no source."""
    path: str = scope["path"]
    name = path.removeprefix("/webhooks").strip("/")
    return "" if "/" in name else name


def _label(source_name: str, sources: dict[str, Source]) -> str:
    """Only configured names become label values: a scanner cannot blow up the metric."""
    return source_name if source_name in sources else "unknown"


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes, request_id: str) -> None:
    headers += [(b"content-length", str(len(body)).encode()), (b"x-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
