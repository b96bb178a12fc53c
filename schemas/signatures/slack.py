"""`slack`: `X-Slack-Signature: v0=<hex>` over `v0:<X-Slack-Request-Timestamp>:<body>`.

Also answers Slack's `url_verification` handshake (the signed request Slack
sends when an Events API URL is entered): its `challenge` is echoed and
nothing is stored.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.signatures._base import BaseScheme, Headers, any_match, hmac_sha256, now_seconds, timestamp_of


class Slack(BaseScheme):
    name: ClassVar[str] = "slack"
    header: ClassVar[str] = "X-Slack-Signature"
    timestamped: ClassVar[bool] = True
    timestamp_header: ClassVar[bytes] = b"x-slack-request-timestamp"

    def verify(self, headers: Headers, body: bytes = b"", now: float | None = None) -> bool:
        stamp = headers.get(self.timestamp_header, b"").strip()
        given = headers.get(b"x-slack-signature", b"").strip().lower()
        matched = any_match(
            [given], [b"v0=" + hmac_sha256(key, b"v0:", stamp, b":", body).hex().encode() for key in self._keys]
        )
        return matched and self.fresh(timestamp_of(stamp), now)

    def sign(
        self, secret: str, body: bytes = b"", *, timestamp: int | None = None, message_id: str | None = None
    ) -> dict[str, str]:
        stamp = str(now_seconds(timestamp))
        mac = hmac_sha256(self.key(secret), b"v0:", stamp.encode(), b":", body).hex()
        return {"X-Slack-Request-Timestamp": stamp, self.header: f"v0={mac}"}

    def handshake(self, document: object) -> str | None:
        if isinstance(document, dict) and document.get("type") == "url_verification":
            challenge = document.get("challenge")
            if isinstance(challenge, str):
                return challenge
        return None


SCHEME = Slack
