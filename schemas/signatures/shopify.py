"""`shopify`: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the raw body>`, keyed with the app's secret.

No timestamp: Shopify's replays are caught by de-duplication on
`X-Shopify-Webhook-Id` (the `shopify` preset).
"""

from __future__ import annotations

import base64
from typing import ClassVar

from schemas.signatures._base import BaseScheme, Headers, any_match, hmac_sha256


class Shopify(BaseScheme):
    name: ClassVar[str] = "shopify"
    header: ClassVar[str] = "X-Shopify-Hmac-Sha256"

    def verify(self, headers: Headers, body: bytes = b"", now: float | None = None) -> bool:
        given = headers.get(b"x-shopify-hmac-sha256", b"").strip()
        return any_match([given], [base64.b64encode(hmac_sha256(key, body)) for key in self._keys])

    def sign(
        self, secret: str, body: bytes = b"", *, timestamp: int | None = None, message_id: str | None = None
    ) -> dict[str, str]:
        return {self.header: base64.b64encode(hmac_sha256(self.key(secret), body)).decode()}


SCHEME = Shopify
