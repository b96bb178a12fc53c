"""What every signature scheme is: the protocol, a base class, and the constant-time helpers they share."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar, Protocol

DEFAULT_TOLERANCE_SECONDS = 300
"""Timestamped schemes refuse a signature further than this from now, either way (Stripe's and Svix's default)."""

_MAX_TIMESTAMP_DIGITS = 12

Headers = Mapping[bytes, bytes]
"""Request headers as ASGI gives them: lower-case names, raw values."""


class SignatureScheme(Protocol):
    name: ClassVar[str]
    """The `scheme` value in a `[[sources]]` block."""
    header: ClassVar[str]
    """The header that carries the signature itself (the one `hookyard sign` is about)."""
    signature_headers: ClassVar[tuple[str, ...]]
    """Every header that carries a signature value: never kept with the event (ids and timestamps are)."""
    needs_body: ClassVar[bool]
    """False: checked from the headers, before any body byte is read. True: right after the bounded read."""
    timestamped: ClassVar[bool]
    """True: the signature covers a timestamp, refused when further than `tolerance_seconds` from now."""

    def __init__(self, secrets: Sequence[str], tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> None:
        """Raises ValueError naming what is wrong with a secret this scheme cannot use."""
        ...

    def verify(self, headers: Headers, body: bytes = b"", now: float | None = None) -> bool:
        """True if any active secret signed this request (any one of several signatures is enough);
        same time whatever the header holds."""
        ...

    def signed_at(self, headers: Headers) -> int | None:
        """The timestamp the signature covers (unix seconds), or None for schemes without one."""
        ...

    def sign(
        self, secret: str, body: bytes = b"", *, timestamp: int | None = None, message_id: str | None = None
    ) -> dict[str, str]:
        """Every header a sender with this secret sets on a request with this body (ONE implementation
        signs and verifies: forwards sign with it too)."""
        ...

    def handshake(self, document: object) -> str | None:
        """A vendor's set-up challenge to answer instead of storing the event (Slack's url_verification)."""
        ...


class BaseScheme:
    """Defaults for the optional parts: covers the body, no timestamp, no handshake; secrets kept as HMAC keys.

    A scheme names `header`; `signature_headers` is just that one unless the scheme lists more.
    """

    header: ClassVar[str]
    signature_headers: ClassVar[tuple[str, ...]]
    needs_body: ClassVar[bool] = True
    timestamped: ClassVar[bool] = False
    timestamp_header: ClassVar[bytes] = b""
    """The lower-case header holding the signed unix-seconds timestamp, when it has one of its own."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "signature_headers" not in cls.__dict__:
            cls.signature_headers = (cls.header,)

    def __init__(self, secrets: Sequence[str], tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> None:
        self._keys = [self.key(secret) for secret in secrets]
        self.tolerance_seconds = tolerance_seconds

    @staticmethod
    def key(secret: str) -> bytes:
        """The HMAC key for a configured secret: the secret exactly as configured, unless a scheme says otherwise."""
        return secret.encode()

    def signed_at(self, headers: Headers) -> int | None:
        header = self.timestamp_header
        return timestamp_of(headers.get(header)) if header else None

    def handshake(self, document: object) -> str | None:
        return None

    def fresh(self, timestamp: int | None, now: float | None) -> bool:
        """The signed timestamp is within `tolerance_seconds` of now, in either direction."""
        if timestamp is None:
            return False
        return abs((time.time() if now is None else now) - timestamp) <= self.tolerance_seconds


def digest(value: bytes) -> bytes:
    """Both sides of a comparison are hashed to fixed-length digests, so their lengths leak nothing."""
    return hashlib.sha256(value).digest()


@functools.lru_cache(maxsize=64)
def _keyed(key: bytes) -> hmac.HMAC:
    """The HMAC state after the key: copying it skips hashing the key blocks on every request."""
    return hmac.new(key, digestmod=hashlib.sha256)


def hmac_sha256(key: bytes, *parts: bytes) -> bytes:
    mac = _keyed(key).copy()
    for part in parts:
        mac.update(part)
    return mac.digest()


def any_match(given: Iterable[bytes], expected: Sequence[bytes]) -> bool:
    """True if any given signature equals any expected one: every pair is compared, no early return."""
    wanted = [digest(value) for value in expected]
    matched = False
    for value in given:
        candidate = digest(value)
        for each in wanted:
            matched |= hmac.compare_digest(candidate, each)
    return matched


def timestamp_of(value: bytes | None) -> int | None:
    """A unix-seconds header value (digits only), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > _MAX_TIMESTAMP_DIGITS:
        return None
    return int(value)


def now_seconds(timestamp: int | None) -> int:
    return int(time.time()) if timestamp is None else timestamp
