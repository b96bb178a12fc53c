"""Refuse bodies that name a key hookyard reads twice: `data`, `data.sent_at`, `data.action`, `data.payload`.

JSON parsers disagree about duplicate keys: msgspec and most others keep
the last, some keep the first. A body with two `action`s could be routed as
one action by hookyard and read as another by whoever parses the stored
body later, so ingest refuses a repeated key among those it reads. Other
keys (inside `payload`, `meta`, unknown ones) are the vendor's business and
are stored as sent; readers that parse them see last-wins, as hookyard does.

The common case costs a few `bytes.count` calls: only when a watched key is
spelled more than once, or written with a `\\u` escape, is the body parsed a
second time with the standard library to look at the keys themselves.
"""

from __future__ import annotations

import json
from typing import Any

_DATA_KEYS = ("sent_at", "action", "payload")
_WATCHED = (b'"data"', *(f'"{key}"'.encode() for key in _DATA_KEYS))


class _Pairs(dict[str, Any]):
    """A decoded object that remembers which of its keys came more than once."""

    repeated: tuple[str, ...] = ()


def _pairs(items: list[tuple[str, Any]]) -> _Pairs:
    result = _Pairs(items)
    if len(result) != len(items):
        seen: set[str] = set()
        repeated: list[str] = []
        for key, _ in items:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        result.repeated = tuple(repeated)
    return result


def repeated_key(body: bytes) -> str | None:
    """The first key of the envelope or of `data` that appears twice, as `data.action`; else None.

    Call only on a body that already decoded as JSON.
    """
    if b"\\u" not in body and all(body.count(name) <= 1 for name in _WATCHED):
        return None
    try:
        document = json.loads(body, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        return None  # what the standard library cannot read, msgspec already judged
    if not isinstance(document, _Pairs):
        return None
    if "data" in document.repeated:
        return "data"
    data = document.get("data")
    if isinstance(data, _Pairs):
        for key in data.repeated:
            if key in _DATA_KEYS:
                return f"data.{key}"
    return None
