"""`POST /webhooks/{source}`: the checks of CONTRACT section 4, in their order.

A raw ASGI handler (mounted in the Litestar app) because this is the hot
path: the signature is checked from the headers before any body byte is
read, the size limit is enforced while reading, the body is decoded once by
msgspec on the event loop, and the event is handed to the group-commit
`EventQueue`. The 202 goes out only once Redis (or the fsync'd spool) holds
the event.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from typing import Any

import msgspec
import structlog

from schemas.ids import new_event_id
from schemas.wire import Accepted, CheckedData, Codes, Envelope, QueuedEvent, error_envelope
from service import metrics
from service.duplicate_keys import repeated_key
from service.ratelimit import IngestLimiter
from service.sources import ClientAddress, Source
from workers.enqueue import EventQueue, QueueUnavailable

log = structlog.get_logger("hookyard.ingest")

Scope = dict[str, Any]
Message = dict[str, Any]

_encode = msgspec.json.Encoder().encode
_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_decode_any = msgspec.json.Decoder().decode
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")
_JSON_TYPE = re.compile(rb"^application/(json|[a-z0-9.+-]*\+json)\s*(;.*)?$", re.IGNORECASE)
_PATH_PART = re.compile(r"`\$\.(\w+)")  # paths are relative to `data`, which is what is converted
_MISSING = re.compile(r"missing required field `(\w+)`")


class Reject(Exception):
    """An ingest check failed: the status, `meta.code` and a detail safe to show."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        warnings: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.warnings = warnings


def request_id_from(headers: dict[bytes, bytes]) -> str:
    given = headers.get(b"x-request-id")
    if given and _REQUEST_ID.match(given):
        return given.decode()
    return os.urandom(12).hex()


class IngestApp:
    """The ASGI callable behind `/webhooks/{source}`."""

    def __init__(
        self,
        sources: dict[str, Source],
        queue: EventQueue,
        client_address: ClientAddress,
        max_body_bytes: int,
        body_timeout: float,
        limiter: IngestLimiter | None = None,
    ) -> None:
        self.sources = sources
        self.queue = queue
        self.client_address = client_address
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_id_from(headers)
        source_name = _source_name(scope)
        try:
            status, envelope = await self._ingest(scope, receive, headers, source_name, request_id)
            extra: tuple[tuple[bytes, bytes], ...] = ()
        except Reject as reject:
            metrics.EVENTS_REJECTED.labels(_label(source_name, self.sources), reject.code).inc()
            status, envelope, extra = (
                reject.status,
                error_envelope(reject.status, reject.code, reject.detail, reject.warnings),
                reject.headers,
            )
            log.info(
                "ingest_rejected",
                request_id=request_id,
                source=source_name[:64],
                status=reject.status,
                code=reject.code,
            )
        except Exception as exc:  # a bug: answer with the envelope, never a bare 500 or a trace
            log.error("ingest_failed", request_id=request_id, error_type=type(exc).__name__, exc_info=exc)
            status, envelope, extra = 500, error_envelope(500, Codes.INTERNAL, "internal error"), ()
        await _respond(send, status, _encode(envelope), request_id, extra)
        metrics.INGEST_LATENCY.observe(time.perf_counter() - started)

    async def _ingest(
        self, scope: Scope, receive: Any, headers: dict[bytes, bytes], source_name: str, request_id: str
    ) -> tuple[int, Envelope]:
        if scope["method"] != "POST":
            raise Reject(405, Codes.METHOD_NOT_ALLOWED, "use POST", ((b"allow", b"POST"),))
        source = self.sources.get(source_name)
        if source is None:
            raise Reject(404, Codes.NOT_FOUND, "no such source")
        if source.allow:
            client = scope.get("client")
            address = self.client_address.resolve(client[0] if client else None, headers.get(b"x-forwarded-for"))
            if not source.allows(address):
                raise Reject(403, Codes.FORBIDDEN, "this address may not send to this source")
        if not source.scheme.verify(headers):
            raise Reject(401, Codes.SIGNATURE, "missing or invalid signature")
        if source.rate_per_minute is not None and self.limiter is not None:
            await _check_rate(self.limiter, source.name, source.rate_per_minute)
        body = await self._read_body(receive, headers)
        if not _JSON_TYPE.match(headers.get(b"content-type", b"").strip()):
            raise Reject(415, Codes.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        event = self._check(body, source, request_id)
        try:
            result = await self.queue.submit(event)
        except QueueUnavailable:
            raise Reject(503, Codes.UNAVAILABLE, "queue unavailable, retry later", ((b"retry-after", b"5"),)) from None
        warnings: dict[str, Any] = {}
        if result.duplicate:
            metrics.EVENTS_DUPLICATE.labels(source.name).inc()
            log.debug("ingest_duplicate", request_id=request_id, event_id=result.id, source=source.name)
            return 200, Envelope(data=Accepted(id=result.id, status="queued", duplicate=True))
        if result.spooled:
            metrics.EVENTS_SPOOLED.labels(source.name).inc()
            warnings = {"queue": "spooled"}
        metrics.EVENTS_RECEIVED.labels(source.name).inc()
        log.debug("ingest_accepted", request_id=request_id, event_id=result.id, source=source.name)
        return 202, Envelope(data=Accepted(id=result.id, status="queued", duplicate=False), warnings=warnings)

    async def _read_body(self, receive: Any, headers: dict[bytes, bytes]) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                raise Reject(400, Codes.validation("CONTENT_LENGTH"), "Content-Length is not a number") from None
            if declared_size > self.max_body_bytes:
                raise Reject(413, Codes.BODY_TOO_LARGE, f"body over {self.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Reject(400, Codes.validation("BODY"), "client went away mid-body")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise Reject(413, Codes.BODY_TOO_LARGE, f"body over {self.max_body_bytes} bytes")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise Reject(408, Codes.TIMEOUT, "body not received in time") from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _check(self, body: bytes, source: Source, request_id: str) -> QueuedEvent:
        try:
            document = _decode_any(body)
        except msgspec.ValidationError as exc:  # numbers beyond 64-bit / float range
            raise Reject(400, Codes.validation("NUMBER"), f"number out of range: {exc}") from None
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise Reject(400, Codes.validation("JSON"), "body is not valid JSON (UTF-8)") from None
        except RecursionError:
            raise Reject(400, Codes.validation("JSON"), "JSON nested too deeply") from None
        if not isinstance(document, dict):
            raise Reject(400, Codes.validation("BODY"), "body must be a JSON object")
        repeated = repeated_key(body)
        if repeated is not None:
            raise Reject(400, Codes.validation("DUPLICATE_KEY"), f"key `{repeated}` appears more than once")
        data = document.get("data")
        if not isinstance(data, dict):
            raise Reject(400, Codes.validation("DATA"), "`data` must be an object")
        try:
            checked = msgspec.convert(data, CheckedData)
        except msgspec.ValidationError as exc:
            raise _validation_reject(str(exc)) from None
        if source.max_age_seconds is not None and checked.sent_at < time.time() - source.max_age_seconds:
            raise Reject(400, Codes.validation("SENT_AT"), f"sent_at older than {source.max_age_seconds} s")
        fingerprint = hashlib.sha256(_encode_sorted(data)).hexdigest()[:32]
        return QueuedEvent(
            id=new_event_id(),
            source=source.name,
            fingerprint=fingerprint,
            received_at_us=time.time_ns() // 1000,
            request_id=request_id,
            body=body.decode("utf-8"),
        )


async def _check_rate(limiter: IngestLimiter, source: str, per_minute: int) -> None:
    verdict = await limiter.hit(source, per_minute)
    if not verdict.allowed:
        raise Reject(
            429,
            Codes.RATELIMITTED,
            f"more than {per_minute} requests a minute for this source",
            ((b"retry-after", str(verdict.retry_after).encode()),),
            {"limits": {"requests_per_minute": per_minute}, "current": {"requests": verdict.count}},
        )


def _validation_reject(message: str) -> Reject:
    missing = _MISSING.search(message)
    located = _PATH_PART.search(message)
    what = (missing or located).group(1) if (missing or located) else "DATA"  # type: ignore[union-attr]
    detail = message.replace("`$.", "`data.").replace("`$`", "`data`")
    return Reject(400, Codes.validation(what.upper()), detail)


def _source_name(scope: Scope) -> str:
    """The one path segment after `/webhooks/` (mounted or not); anything else names no source."""
    path: str = scope["path"]
    name = path.removeprefix("/webhooks").strip("/")
    return "" if "/" in name else name


def _label(source_name: str, sources: dict[str, Source]) -> str:
    """Only configured names become label values: a scanner cannot blow up the metric."""
    return source_name if source_name in sources else "unknown"


async def _respond(
    send: Any, status: int, body: bytes, request_id: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
