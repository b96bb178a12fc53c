"""`standard-webhooks`: the Standard Webhooks spec (Svix, OpenAI, Clerk, Resend, ... send it).

`webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64> [v1,<base64> ...]`,
an HMAC-SHA256 over `<id>.<timestamp>.<body>` whose key is the base64 after
`whsec_` (a secret without the prefix, or without base64 padding, is taken
as the reference libraries take it). Signatures of other versions in the list (`v1a`,
asymmetric) are skipped; any one `v1` that matches any active secret is
enough. Forwards sign outgoing requests with this module.
"""

from __future__ import annotations

import base64
import binascii
import secrets as random
from typing import ClassVar

from schemas.signatures._base import BaseScheme, Headers, any_match, hmac_sha256, now_seconds, timestamp_of

PREFIX = "whsec_"


class StandardWebhooks(BaseScheme):
    name: ClassVar[str] = "standard-webhooks"
    header: ClassVar[str] = "webhook-signature"
    timestamped: ClassVar[bool] = True
    timestamp_header: ClassVar[bytes] = b"webhook-timestamp"

    @staticmethod
    def key(secret: str) -> bytes:
        encoded = secret.removeprefix(PREFIX).rstrip("=")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not key:
            raise ValueError("a standard-webhooks secret is `whsec_` followed by base64")
        return key

    def verify(self, headers: Headers, body: bytes = b"", now: float | None = None) -> bool:
        message_id = headers.get(b"webhook-id", b"").strip()
        stamp = headers.get(self.timestamp_header, b"").strip()
        given = [
            version_and_value[3:]
            for version_and_value in headers.get(b"webhook-signature", b"").split()
            if version_and_value.startswith(b"v1,")
        ]
        expected = [base64.b64encode(hmac_sha256(key, message_id, b".", stamp, b".", body)) for key in self._keys]
        matched = any_match(given, expected)
        return matched and bool(message_id) and self.fresh(timestamp_of(stamp), now)

    def sign(
        self, secret: str, body: bytes = b"", *, timestamp: int | None = None, message_id: str | None = None
    ) -> dict[str, str]:
        message_id = message_id or f"msg_{random.token_hex(12)}"
        stamp = str(now_seconds(timestamp))
        mac = hmac_sha256(self.key(secret), message_id.encode(), b".", stamp.encode(), b".", body)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        }


SCHEME = StandardWebhooks
