"""Opaque keyset cursors: base64url of a msgpack `CursorKey`.

A cursor is the (time, id) of the last row of a page — `(received_at, id)`
for events and rejections, `(updated_at, id)` for deliveries — so the next
page is one index range scan from there, whatever page it is, and rows
inserted meanwhile never shift it. It also carries the order and a hash of
the filters (which names the list too): reused with other filters or on
another list it is refused rather than silently wrong. It is not signed; a
forged one only moves the caller's own position.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

import msgspec

from schemas.api import CursorKey
from schemas.errors import Invalid
from schemas.ids import is_event_id

VERSION = 1
_decode = msgspec.msgpack.Decoder(CursorKey).decode
_encode = msgspec.msgpack.Encoder().encode
_MAX_CURSOR_CHARS = 256


def to_micros(value: datetime) -> int:
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)


def encode_cursor(at: datetime, key: str | int, order: str, query: str) -> str:
    cursor = CursorKey(version=VERSION, received_at_us=to_micros(at), id=key, order=order, query=query)
    return base64.urlsafe_b64encode(_encode(cursor)).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, order: str, query: str) -> tuple[datetime, str]:
    """The (received_at, event id) to continue after; `Invalid` if it is not ours or not for this query."""
    position, key = _decode_position(text, order, query)
    if not isinstance(key, str) or not is_event_id(key):
        raise Invalid("CURSOR", "cursor is not one this API gave out")
    return position, key


def decode_row_cursor(text: str, order: str, query: str) -> tuple[datetime, int]:
    """The (time, row id) to continue after, for lists keyed by an integer row id (deliveries, rejections)."""
    position, key = _decode_position(text, order, query)
    if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < 2**63:
        raise Invalid("CURSOR", "cursor is not one this API gave out")
    return position, key


def _decode_position(text: str, order: str, query: str) -> tuple[datetime, str | int]:
    if len(text) > _MAX_CURSOR_CHARS:
        raise Invalid("CURSOR", "cursor is too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = _decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise Invalid("CURSOR", "cursor is not one this API gave out") from None
    if key.version != VERSION:
        raise Invalid("CURSOR", "cursor is not one this API gave out")
    if key.order != order or key.query != query:
        raise Invalid("CURSOR", "cursor belongs to a query with other filters or order")
    try:
        position = from_micros(key.received_at_us)
    except (OverflowError, ValueError):
        raise Invalid("CURSOR", "cursor is not one this API gave out") from None
    return position, key.id
