"""Every error answer is the envelope with `meta.code`; this module is the one mapping.

Raise `ApiError` anywhere in a route; Litestar's own exceptions (404 for an
unknown path, 405, body too large, validation) and anything unexpected are
translated here too, so no response carries a stack trace.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.exceptions import ValidationException as LitestarValidation

from schemas.wire import Codes, Envelope, error_envelope

log = structlog.get_logger("hookyard.api")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        warnings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.warnings = warnings or {}


_CODES = {
    400: Codes.validation("REQUEST"),
    401: Codes.UNAUTHORIZED,
    403: Codes.FORBIDDEN,
    404: Codes.NOT_FOUND,
    405: Codes.METHOD_NOT_ALLOWED,
    413: Codes.BODY_TOO_LARGE,
    415: Codes.UNSUPPORTED_MEDIA_TYPE,
    429: Codes.RATELIMITTED,
    503: Codes.UNAVAILABLE,
}

_DETAILS = {404: "not found", 405: "method not allowed", 401: "unauthorized", 403: "forbidden"}


def envelope_response(status: int, envelope: Envelope, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(envelope),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers or {},
    )


def handle_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return envelope_response(exc.status, error_envelope(exc.status, exc.code, exc.detail, exc.warnings), exc.headers)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code: str | None = None
    if isinstance(exc, LitestarValidation):
        status = 400
        code, detail = _validation_code(exc)
    elif status >= 500:
        detail = "internal error"
    else:
        detail = _DETAILS.get(status) or str(exc.detail)
    if isinstance(exc, NotAuthorizedException):
        status = 401
    if isinstance(exc, PermissionDeniedException):
        status = 403
    code = code or _CODES.get(status, Codes.INTERNAL if status >= 500 else Codes.validation("REQUEST"))
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in ("allow", "retry-after")}
    return envelope_response(status, error_envelope(status, code, detail), headers)


def _validation_code(exc: LitestarValidation) -> tuple[str, str]:
    """Name the first bad parameter: `?limit=0` is `ERR:MSG:VALIDATION:LIMIT`, a bad body `...:BODY`."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    first = next((item for item in extra if isinstance(item, dict) and item.get("key")), None)
    if first is None:
        return Codes.validation("REQUEST"), "invalid request"
    key = str(first["key"])
    what = "BODY" if first.get("source") == "body" or key == "data" else re.sub(r"[^A-Z0-9]+", "_", key.upper())
    message = str(first.get("message", "invalid"))[:200]
    return Codes.validation(what.strip("_") or "REQUEST"), f"{key}: {message}"


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
    return envelope_response(500, error_envelope(500, Codes.INTERNAL, "internal error"))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
