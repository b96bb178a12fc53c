"""What every body format is, and the located values they share (event id, send time).

A format runs after the signature, size, content-type and JSON checks, on
the decoded body object: it decides the action, the send time, the vendor's
event id and where the payload is, or refuses the body with a 400 naming
what is wrong. Nothing it refuses is stored or queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import msgspec

from schemas.errors import Invalid
from schemas.locators import MISSING, Locator, parse_locator
from schemas.settings import SourceSettings
from schemas.wire import MAX_SENT_AT

MAX_EVENT_ID_LENGTH = 255
_MAX_TIME_DIGITS = 12

Headers = Mapping[bytes, bytes]


class Located(msgspec.Struct, frozen=True, kw_only=True):
    action: str
    sent_at: int | None
    """None: the signed timestamp, else the time of receipt."""
    vendor_event_id: str | None
    """The vendor's id: when set, it alone decides what is a duplicate."""
    identity: Any
    """Without a vendor id, the value whose canonical encoding is the body fingerprint."""
    whole_body: bool
    """True: the payload is the whole body; False: the GuestXM envelope's `data.payload`."""


class Format(Protocol):
    name: ClassVar[str]
    """The `format` value in a `[[sources]]` block."""

    def __init__(self, source: SourceSettings, key: str) -> None:
        """Raises `ConfigError` naming `key.<setting>` for a setting this format cannot use."""
        ...

    def read(self, document: dict[str, Any], body: bytes, headers: Headers) -> Located:
        """The event this body is, or `Invalid` naming what is wrong."""
        ...


def locator(text: str) -> Locator | None:
    """A configured locator (already checked by settings), or None when the key is empty."""
    return parse_locator(text) if text else None


def _located(where: Locator, document: Any, headers: Headers, code: str, what: str) -> Any:
    """The value at `where`, or `Invalid(code)` when there is none."""
    value = where.find(document, headers)
    if value is MISSING or value is None:
        raise Invalid(code, f"no {what} at {where.text}")
    return value


def read_event_id(where: Locator | None, document: Any, headers: Headers) -> str | None:
    """The vendor's event id: a non-empty string (or an integer) of at most 255 printable characters."""
    if where is None:
        return None
    value = _located(where, document, headers, "EVENT_ID", "event id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise Invalid("EVENT_ID", f"the event id at {where.text} must be a non-empty string")
    if len(value) > MAX_EVENT_ID_LENGTH or not value.isprintable():
        raise Invalid(
            "EVENT_ID", f"the event id at {where.text} must be at most {MAX_EVENT_ID_LENGTH} printable characters"
        )
    return value


def read_sent_at(where: Locator | None, document: Any, headers: Headers) -> int | None:
    """Unix seconds: a JSON integer, or a string of digits (headers), from 0 to 9999-12-31."""
    if where is None:
        return None
    value = _located(where, document, headers, "SENT_AT", "send time")
    if isinstance(value, str) and value.isdigit() and value.isascii() and len(value) <= _MAX_TIME_DIGITS:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SENT_AT:
        raise Invalid("SENT_AT", f"the send time at {where.text} must be unix seconds from 0 to {MAX_SENT_AT}")
    return value
