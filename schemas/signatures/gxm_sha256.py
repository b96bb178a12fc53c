"""`gxm-sha256`: GuestXM's `X-GXM-APISIGNATURE`, sha256(secret) in hex, the same on every request.

It does not cover the body, so it is a bearer token: pair it with
`allow_ips`, `max_age_seconds` and TLS (README, "Security").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar

from schemas.signatures._base import DEFAULT_TOLERANCE_SECONDS, BaseScheme, Headers, any_match


class GxmSha256(BaseScheme):
    name: ClassVar[str] = "gxm-sha256"
    header: ClassVar[str] = "X-GXM-APISIGNATURE"
    _header_key: ClassVar[bytes] = b"x-gxm-apisignature"
    needs_body: ClassVar[bool] = False

    def __init__(self, secrets: Sequence[str], tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> None:
        super().__init__(secrets, tolerance_seconds)
        # Keep the expected lowercase hex, never the secrets themselves.
        self._expected = [hashlib.sha256(key).hexdigest().encode() for key in self._keys]
        self._keys = []

    def verify(self, headers: Headers, body: bytes = b"", now: float | None = None) -> bool:
        return any_match([headers.get(self._header_key, b"").strip().lower()], self._expected)

    def sign(
        self, secret: str, body: bytes = b"", *, timestamp: int | None = None, message_id: str | None = None
    ) -> dict[str, str]:
        return {self.header: hashlib.sha256(secret.encode()).hexdigest()}


SCHEME = GxmSha256
