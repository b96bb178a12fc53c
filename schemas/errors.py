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

    def __init_subclass__(cls, *, status: int = 0, code: str = "", **kwargs: Any) -> None:
        """`class NotFound(HookyardError, status=404, code="ERR:MSG:NOT_FOUND")`: the table above, one line a code."""
        super().__init_subclass__(**kwargs)
        cls.status = status or cls.status
        cls.code = code or cls.code

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


class Invalid(HookyardError, status=400, code="ERR:MSG:VALIDATION"):
    """A bad field, parameter or body; `what` is the upper-case name in the code (`LIMIT`, `DATA`)."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(detail)
        self.what = what

    @property
    def meta_code(self) -> str:
        return f"{self.code}:{self.what}"


class Unauthorized(HookyardError, status=401, code="ERR:MSG:UNAUTHORIZED"):
    """No API key, or one that is not valid."""


class BadSignature(HookyardError, status=401, code="ERR:MSG:SIGNATURE"):
    """The sender's signature does not verify."""


class Forbidden(HookyardError, status=403, code="ERR:MSG:FORBIDDEN"):
    """Known, but not allowed: a read key on an admin route, an address outside `allow_ips`."""


class NotFound(HookyardError, status=404, code="ERR:MSG:NOT_FOUND"):
    """No such route, source, event or handler."""


class MethodNotAllowed(HookyardError, status=405, code="ERR:MSG:METHOD_NOT_ALLOWED"):
    """Give the `Allow` header: `MethodNotAllowed("use POST", headers=(("allow", "POST"),))`."""


class RequestTimeout(HookyardError, status=408, code="ERR:MSG:TIMEOUT"):
    """The body did not arrive in time."""


class BodyTooLarge(HookyardError, status=413, code="ERR:MSG:BODY_TOO_LARGE"):
    """A body over the source's `max_body_bytes`."""


class UnsupportedMediaType(HookyardError, status=415, code="ERR:MSG:UNSUPPORTED_MEDIA_TYPE"):
    """A body that is not JSON."""


class RateLimited(HookyardError, status=429, code="ERR:MSG:RATELIMITTED"):
    """Over a limit: `Retry-After` and, in `warnings`, the limit and the count (GuestXM's shape)."""

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


class Internal(HookyardError, status=500, code="ERR:MSG:INTERNAL"):
    """A bug: the caller sees only this, the log has the rest."""

    def __init__(
        self, detail: str = "internal error", *, headers: Headers = (), warnings: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail, headers=headers, warnings=warnings)


class Unavailable(HookyardError, status=503, code="ERR:MSG:UNAVAILABLE"):
    """A dependency is away; try again after `Retry-After`."""

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
