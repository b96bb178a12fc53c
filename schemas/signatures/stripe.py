"""`stripe`: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 over `<ts>.<body>`.

The key is the endpoint's signing secret exactly as configured (`whsec_...`
included). Stripe lists one `v1` per active secret while a secret is rolled;
any one that matches is enough. `v0` (test-mode legacy) is never checked.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.signatures._base import BaseScheme, Headers, any_match, hmac_sha256, now_seconds, timestamp_of


def _fields(value: bytes) -> tuple[bytes | None, list[bytes]]:
    """(the first `t`, every `v1`) of a Stripe-Signature value."""
    stamp: bytes | None = None
    signatures: list[bytes] = []
    for item in value.split(b","):
        key, _, field = item.strip().partition(b"=")
        if key == b"t" and stamp is None:
            stamp = field.strip()
        elif key == b"v1":
            signatures.append(field.strip().lower())
    return stamp, signatures


class Stripe(BaseScheme):
    name: ClassVar[str] = "stripe"
    header: ClassVar[str] = "Stripe-Signature"
    timestamped: ClassVar[bool] = True

    def signed_at(self, headers: Headers) -> int | None:
        return timestamp_of(_fields(headers.get(b"stripe-signature", b""))[0])

    def verify(self, headers: Headers, body: bytes = b"", now: float | None = None) -> bool:
        stamp, given = _fields(headers.get(b"stripe-signature", b""))
        signed = stamp or b""
        matched = any_match(given, [hmac_sha256(key, signed, b".", body).hex().encode() for key in self._keys])
        return matched and self.fresh(timestamp_of(stamp), now)

    def sign(
        self, secret: str, body: bytes = b"", *, timestamp: int | None = None, message_id: str | None = None
    ) -> dict[str, str]:
        stamp = str(now_seconds(timestamp))
        return {self.header: f"t={stamp},v1={hmac_sha256(self.key(secret), stamp.encode(), b'.', body).hex()}"}


SCHEME = Stripe
