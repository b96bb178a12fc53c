"""`gxm-sha256`: GuestXM's `X-GXM-APISIGNATURE`, sha256(secret) in hex, the same on every request.

It does not cover the body, so it is a bearer token: pair it with
`allow_ips`, `max_age_seconds` and TLS (README, "Security").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import ClassVar

from schemas.signatures._base import digest


class GxmSha256:
    name: ClassVar[str] = "gxm-sha256"
    header: ClassVar[str] = "X-GXM-APISIGNATURE"
    _header_key: ClassVar[bytes] = b"x-gxm-apisignature"
    needs_body: ClassVar[bool] = False

    def __init__(self, secrets: Sequence[str]) -> None:
        # Store digests of the expected lowercase hex, never the secrets themselves.
        self._expected = [digest(hashlib.sha256(s.encode()).hexdigest().encode()) for s in secrets]

    def verify(self, headers: Mapping[bytes, bytes], body: bytes = b"") -> bool:
        given = digest(headers.get(self._header_key, b"").strip().lower())
        matched = False
        for expected in self._expected:
            matched |= hmac.compare_digest(given, expected)
        return matched

    def sign(self, secret: str, body: bytes = b"") -> tuple[str, str]:
        return self.header, hashlib.sha256(secret.encode()).hexdigest()


SCHEME = GxmSha256
