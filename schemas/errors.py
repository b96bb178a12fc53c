"""Every error a caller can be shown: one class per `meta.code`, each carrying its HTTP status.

Raise them anywhere (ingest, a route, a worker-side operation such as a
replay); `service.errors` turns any of them into the envelope. The CLI
turns `Invalid` into a one-line usage error.

    HookyardError
    ├── Invalid               400  ERR:MSG:VALIDATION:<WHAT>   (`what` names the field)
    ├── Unauthorized          401  ERR:MSG:UNAUTHORIZED
    ├── BadSignature          401  ERR:MSG:SIGNATURE
    ├── Forbidden             403  ERR:MSG:FORBIDDEN
    ├── NotFound              404  ERR:MSG:NOT_FOUND
    ├── MethodNotAllowed      405  ERR:MSG:METHOD_NOT_ALLOWED  (Allow)
    ├── RequestTimeout        408  ERR:MSG:TIMEOUT
    ├── BodyTooLarge          413  ERR:MSG:BODY_TOO_LARGE
    ├── UnsupportedMediaType  415  ERR:MSG:UNSUPPORTED_MEDIA_TYPE
    ├── RateLimited           429  ERR:MSG:RATELIMITTED        (Retry-After, GuestXM's limit warnings)
    ├── Internal              500  ERR:MSG:INTERNAL
    └── Unavailable           503  ERR:MSG:UNAVAILABLE         (Retry-After)

`detail` is shown to the caller, so it never holds a secret, a payload or a
stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar

from schemas.wire import Envelope, ErrorData

Headers = tuple[tuple[str, str], ...]


class HookyardError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "ERR:MSG:INTERNAL"

    def __init__(self, detail: str, *, headers: Headers = (), warnings: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        """Extra response headers (`Retry-After`, `Allow`, `WWW-Authenticate`)."""
        self.warnings = warnings or {}

    @property
    def meta_code(self) -> str:
        return self.code

    def envelope(self) -> Envelope:
        data = ErrorData(status=self.status, detail=self.detail)
        return Envelope(data=data, meta={"code": self.meta_code}, warnings=self.warnings)


class Invalid(HookyardError):
    """A bad field, parameter or body; `what` is the upper-case name in the code (`LIMIT`, `DATA`)."""

    status = 400
    code = "ERR:MSG:VALIDATION"

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(detail)
        self.what = what

    @property
    def meta_code(self) -> str:
        return f"{self.code}:{self.what}"


class Unauthorized(HookyardError):
    status = 401
    code = "ERR:MSG:UNAUTHORIZED"


class BadSignature(HookyardError):
    status = 401
    code = "ERR:MSG:SIGNATURE"


class Forbidden(HookyardError):
    status = 403
    code = "ERR:MSG:FORBIDDEN"


class NotFound(HookyardError):
    status = 404
    code = "ERR:MSG:NOT_FOUND"


class MethodNotAllowed(HookyardError):
    """Give the `Allow` header: `MethodNotAllowed("use POST", headers=(("allow", "POST"),))`."""

    status = 405
    code = "ERR:MSG:METHOD_NOT_ALLOWED"


class RequestTimeout(HookyardError):
    status = 408
    code = "ERR:MSG:TIMEOUT"


class BodyTooLarge(HookyardError):
    status = 413
    code = "ERR:MSG:BODY_TOO_LARGE"


class UnsupportedMediaType(HookyardError):
    status = 415
    code = "ERR:MSG:UNSUPPORTED_MEDIA_TYPE"


class RateLimited(HookyardError):
    """Over a limit: `Retry-After` and, in `warnings`, the limit and the count (GuestXM's shape)."""

    status = 429
    code = "ERR:MSG:RATELIMITTED"

    @classmethod
    def over(cls, detail: str, *, limit: int, count: int, retry_after: int) -> RateLimited:
        return cls(
            detail,
            headers=(("retry-after", str(retry_after)),),
            warnings={"limits": {"requests_per_minute": limit}, "current": {"requests": count}},
        )

    @classmethod
    def streams(cls, detail: str, *, limit: int, count: int, retry_after: int = 5) -> RateLimited:
        """Too many live streams open: the same shape, counting streams."""
        return cls(
            detail,
            headers=(("retry-after", str(retry_after)),),
            warnings={"limits": {"streams": limit}, "current": {"streams": count}},
        )


class Internal(HookyardError):
    """A bug: the caller sees only this, the log has the rest."""

    status = 500
    code = "ERR:MSG:INTERNAL"

    def __init__(
        self, detail: str = "internal error", *, headers: Headers = (), warnings: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail, headers=headers, warnings=warnings)


class Unavailable(HookyardError):
    status = 503
    code = "ERR:MSG:UNAVAILABLE"

    def __init__(
        self, detail: str, *, headers: Headers = (("retry-after", "5"),), warnings: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail, headers=headers, warnings=warnings)


BY_STATUS: dict[int, type[HookyardError]] = {
    error.status: error
    for error in (
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        BodyTooLarge,
        UnsupportedMediaType,
        RateLimited,
        Internal,
        Unavailable,
    )
}
"""The class for an HTTP status that another layer (Litestar) chose; 400 is `Invalid`, which names its field."""
