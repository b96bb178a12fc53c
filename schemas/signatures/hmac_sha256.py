"""`hmac-sha256`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub and many others).

Covers the body, so a captured request cannot carry another body. GitHub also
sends the older SHA-1 `X-Hub-Signature`; it is not checked, but it is a
signature value, so it is never kept with the event either.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.signatures._base import BaseScheme, Headers, any_match, hmac_sha256


class HmacSha256(BaseScheme):
    name: ClassVar[str] = "hmac-sha256"
    header: ClassVar[str] = "X-Hub-Signature-256"
    signature_headers: ClassVar[tuple[str, ...]] = ("X-Hub-Signature-256", "X-Hub-Signature")
    _header_key: ClassVar[bytes] = b"x-hub-signature-256"

    def verify(self, headers: Headers, body: bytes = b"", now: float | None = None) -> bool:
        given = headers.get(self._header_key, b"").strip().lower()
        return any_match([given], [b"sha256=" + hmac_sha256(key, body).hex().encode() for key in self._keys])

    def sign(
        self, secret: str, body: bytes = b"", *, timestamp: int | None = None, message_id: str | None = None
    ) -> dict[str, str]:
        return {self.header: "sha256=" + hmac_sha256(self.key(secret), body).hex()}


SCHEME = HmacSha256
