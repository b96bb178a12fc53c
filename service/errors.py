"""The one mapper from errors to answers: every error response is the envelope with `meta.code`.

Ingest (a raw ASGI handler) and the Litestar app both answer an error with
`render(error)`. Litestar's own exceptions (an unknown path, a bad query
parameter, a body too large) become our `schemas.errors` classes first, and
anything unexpected becomes `Internal` after a log line, so no response
carries a stack trace.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.exceptions import ValidationException as LitestarValidation

from schemas.errors import BY_STATUS, HookyardError, Internal, Invalid
from schemas.wire import Envelope

log = structlog.get_logger("hookyard.errors")

_encode = msgspec.json.Encoder().encode
_KEPT_HEADERS = ("allow", "retry-after", "www-authenticate")
_DETAILS = {404: "not found", 405: "method not allowed", 401: "unauthorized", 403: "forbidden"}


def render(error: HookyardError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers (content type included) and body of the answer to `error`."""
    headers = [(b"content-type", b"application/json")]
    headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in error.headers]
    return error.status, headers, _encode(error.envelope())


def envelope_response(status: int, envelope: Envelope, headers: dict[str, str] | None = None) -> Response[bytes]:
    """A Litestar response holding an envelope (health answers that are not errors use it too)."""
    return Response(content=_encode(envelope), status_code=status, media_type=MediaType.JSON, headers=headers or {})


def from_http_exception(exc: HTTPException) -> HookyardError:
    """Litestar's exception as ours: a bad query parameter names itself (`?limit=0`: `VALIDATION:LIMIT`)."""
    if isinstance(exc, LitestarValidation):
        return _validation(exc)
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        status = 401
    if isinstance(exc, PermissionDeniedException):
        status = 403
    headers = tuple((k.lower(), v) for k, v in (exc.headers or {}).items() if k.lower() in _KEPT_HEADERS)
    if status >= 500:
        return Internal(headers=headers)
    detail = _DETAILS.get(status) or str(exc.detail)
    error_class = BY_STATUS.get(status)
    if error_class is None:
        return Invalid("REQUEST", detail)
    return error_class(detail, headers=headers)


def _validation(exc: LitestarValidation) -> Invalid:
    extra = exc.extra if isinstance(exc.extra, list) else []
    first = next((item for item in extra if isinstance(item, dict) and item.get("key")), None)
    if first is None:
        return Invalid("REQUEST", "invalid request")
    key = str(first["key"])
    what = "BODY" if first.get("source") == "body" or key == "data" else re.sub(r"[^A-Z0-9]+", "_", key.upper())
    message = str(first.get("message", "invalid"))[:200]
    return Invalid(what.strip("_") or "REQUEST", f"{key}: {message}")


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's exception handler for everything."""
    if isinstance(exc, HookyardError):
        error = exc
    elif isinstance(exc, HTTPException):
        error = from_http_exception(exc)
    else:
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        error = Internal()
    status, headers, body = render(error)
    return Response(
        content=body,
        status_code=status,
        media_type=MediaType.JSON,
        headers={name.decode(): value.decode() for name, value in headers if name != b"content-type"},
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {Exception: handle}
