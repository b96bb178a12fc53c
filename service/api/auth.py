"""API keys: who is calling, in constant time, without ever keeping or logging a key.

Configured keys are held only as SHA-256 digests (`key_sha256` is one
already). A presented key is hashed too, and its digest is compared with
every configured digest, with no early exit, so neither the time taken nor
the order of keys tells an attacker how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from schemas.settings import Settings

ROLES = {"read": 0, "admin": 1}


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    rate_per_minute: int
    digest: bytes

    def allows(self, role: str) -> bool:
        return ROLES[self.role] >= ROLES[role]


class KeyRing:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        keys = []
        for configured in settings.api_keys:
            if configured.key is not None:
                digest = hashlib.sha256(configured.key.encode()).digest()
            else:
                assert configured.key_sha256 is not None  # settings check exactly one is given
                digest = bytes.fromhex(configured.key_sha256)
            keys.append(ApiKey(configured.name, configured.role, configured.rate_per_minute, digest))
        return cls(keys)

    def identify(self, presented: str) -> ApiKey | None:
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest) and found is None:
                found = key
        return found

    def find(self, name: str, digest: bytes) -> ApiKey | None:
        """The configured key with this name and digest, if it is still configured (console sessions)."""
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest) and key.name == name and found is None:
                found = key
        return found


def presented_key(authorization: str | None, api_key_header: str | None) -> str | None:
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`; None when neither is given."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if api_key_header and api_key_header.strip():
        return api_key_header.strip()
    return None
