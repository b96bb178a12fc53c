"""What a handler receives: one stored event and the delivery's attempt number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    source: str
    action: str
    sent_at: datetime
    received_at: datetime
    payload: dict[str, Any]
    """The vendor's payload: `data.payload` of a GuestXM envelope, else the whole body (decoded)."""
    attempt: int
    """1 for the first try; a retry or a replay continues the count."""
    handler: str = ""
    request_id: str = ""
    """The ingest request's id, for handlers' own log lines."""
    vendor_event_id: str | None = None
    """The vendor's own event id (`evt_...`, `X-GitHub-Delivery`, `webhook-id`) when the source locates one."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """The request's headers by lower-case name, without `Authorization`, `Cookie` or signature values."""

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and replays of this event for this handler."""
        return f"{self.id}:{self.handler}"


class PermanentError(Exception):
    """Raise from a handler to make its delivery `dead` at once, with no retry."""
