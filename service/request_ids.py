"""Request ids: a caller's sane `X-Request-ID` is echoed, otherwise one is made.

Ingest (on its fast path) and the Litestar middleware both call
`request_id`, so every response, error or not, carries one.
"""

from __future__ import annotations

import re

from schemas.ids import random_bytes

_SANE = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")


def request_id(given: bytes | None) -> str:
    """`given` if it is 1-128 safe characters, else 24 fresh hex digits."""
    if given and _SANE.match(given):
        return given.decode()
    return random_bytes(12).hex()
