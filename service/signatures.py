"""Signature schemes: how a source proves it sent a webhook.

Each scheme is one class behind `SignatureScheme` and one name in `SCHEMES`
(`gxm-sha256`, and `hmac-sha256` over the body, GitHub-style). A scheme that
does not cover the body (`needs_body = False`) is checked from the headers
before any body byte is read; one that does is checked right after the
bounded body read, before parsing. Checks take the same time whatever the
header holds: both sides are hashed to fixed-length digests and every active
secret is compared, with no early return.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol


class SignatureScheme(Protocol):
    name: ClassVar[str]
    header: ClassVar[str]
    needs_body: ClassVar[bool]

    def verify(self, headers: Mapping[bytes, bytes], body: bytes = b"") -> bool: ...

    def sign(self, secret: str, body: bytes = b"") -> tuple[str, str]:
        """The (header, value) a sender with this secret puts on a request with this body."""
        ...


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class GxmSha256:
    """GuestXM: `X-GXM-APISIGNATURE` is sha256(secret) in hex, the same on every request.

    It does not cover the body, so it is a bearer token: pair it with
    `allow_ips`, `max_age_seconds` and TLS (README, "Security").
    """

    name: ClassVar[str] = "gxm-sha256"
    header: ClassVar[str] = "X-GXM-APISIGNATURE"
    _header_key: ClassVar[bytes] = b"x-gxm-apisignature"
    needs_body: ClassVar[bool] = False

    def __init__(self, secrets: Sequence[str]) -> None:
        # Store digests of the expected lowercase hex, never the secrets themselves.
        self._expected = [_digest(hashlib.sha256(s.encode()).hexdigest().encode()) for s in secrets]

    def verify(self, headers: Mapping[bytes, bytes], body: bytes = b"") -> bool:
        given = _digest(headers.get(self._header_key, b"").strip().lower())
        matched = False
        for expected in self._expected:
            matched |= hmac.compare_digest(given, expected)
        return matched

    def sign(self, secret: str, body: bytes = b"") -> tuple[str, str]:
        return self.header, hashlib.sha256(secret.encode()).hexdigest()


class HmacSha256:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub and many others).

    Covers the body, so a captured request cannot carry another body.
    """

    name: ClassVar[str] = "hmac-sha256"
    header: ClassVar[str] = "X-Hub-Signature-256"
    _header_key: ClassVar[bytes] = b"x-hub-signature-256"
    needs_body: ClassVar[bool] = True

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = [secret.encode() for secret in secrets]

    def verify(self, headers: Mapping[bytes, bytes], body: bytes = b"") -> bool:
        given = _digest(headers.get(self._header_key, b"").strip().lower())
        matched = False
        for key in self._keys:
            expected = b"sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest().encode()
            matched |= hmac.compare_digest(given, _digest(expected))
        return matched

    def sign(self, secret: str, body: bytes = b"") -> tuple[str, str]:
        return self.header, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


SCHEMES: dict[str, type[SignatureScheme]] = {GxmSha256.name: GxmSha256, HmacSha256.name: HmacSha256}


def scheme_for(name: str, secrets: Sequence[str]) -> SignatureScheme:
    return SCHEMES[name](secrets)  # type: ignore[call-arg]  # every scheme takes its secrets
