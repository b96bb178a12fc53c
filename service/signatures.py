"""Signature schemes: how a source proves it sent a webhook.

Each scheme is one class behind `SignatureScheme`; adding HMAC-over-body or
Standard Webhooks is one more class and one more name in `SCHEMES`. Checks
run before the body is parsed and take the same time whatever the header
holds: both sides are hashed to fixed-length digests and every active
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

    def verify(self, headers: Mapping[bytes, bytes], body: bytes | None) -> bool: ...

    def sign(self, secret: str) -> tuple[str, str]:
        """The (header, value) a sender with this secret puts on its requests."""
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

    def verify(self, headers: Mapping[bytes, bytes], body: bytes | None = None) -> bool:
        given = _digest(headers.get(self._header_key, b"").strip().lower())
        matched = False
        for expected in self._expected:
            matched |= hmac.compare_digest(given, expected)
        return matched

    def sign(self, secret: str) -> tuple[str, str]:
        return self.header, hashlib.sha256(secret.encode()).hexdigest()


SCHEMES: dict[str, type[GxmSha256]] = {GxmSha256.name: GxmSha256}


def scheme_for(name: str, secrets: Sequence[str]) -> GxmSha256:
    return SCHEMES[name](secrets)
