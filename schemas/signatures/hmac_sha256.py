"""`hmac-sha256`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub and many others).

Covers the body, so a captured request cannot carry another body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import ClassVar

from schemas.signatures._base import digest


class HmacSha256:
    name: ClassVar[str] = "hmac-sha256"
    header: ClassVar[str] = "X-Hub-Signature-256"
    _header_key: ClassVar[bytes] = b"x-hub-signature-256"
    needs_body: ClassVar[bool] = True

    def __init__(self, secrets: Sequence[str]) -> None:
        self._keys = [secret.encode() for secret in secrets]

    def verify(self, headers: Mapping[bytes, bytes], body: bytes = b"") -> bool:
        given = digest(headers.get(self._header_key, b"").strip().lower())
        matched = False
        for key in self._keys:
            expected = b"sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest().encode()
            matched |= hmac.compare_digest(given, digest(expected))
        return matched

    def sign(self, secret: str, body: bytes = b"") -> tuple[str, str]:
        return self.header, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


SCHEME = HmacSha256
