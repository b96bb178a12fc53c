"""What every signature scheme is: the protocol and the constant-time helpers they share."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol


class SignatureScheme(Protocol):
    name: ClassVar[str]
    """The `scheme` value in a `[[sources]]` block."""
    header: ClassVar[str]
    """The header that carries the signature."""
    needs_body: ClassVar[bool]
    """False: checked from the headers, before any body byte is read. True: right after the bounded read."""

    def __init__(self, secrets: Sequence[str]) -> None: ...

    def verify(self, headers: Mapping[bytes, bytes], body: bytes = b"") -> bool:
        """True if any active secret signed this request; same time whatever the header holds."""
        ...

    def sign(self, secret: str, body: bytes = b"") -> tuple[str, str]:
        """The (header, value) a sender with this secret puts on a request with this body."""
        ...


def digest(value: bytes) -> bytes:
    """Both sides of a comparison are hashed to fixed-length digests, so their lengths leak nothing."""
    return hashlib.sha256(value).digest()
