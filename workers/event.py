"""What a handler receives: one stored event and the delivery's attempt number."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

if TYPE_CHECKING:
    from schemas.tables import EventRow


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
    data: Any = None
    """With `@handler(..., payload=SomeStruct)`: the payload converted to that Struct; else `None`."""
    body: str = ""
    """The exact request body as received (for a GuestXM source, the whole envelope): what a forward sends."""

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and replays of this event for this handler."""
        return f"{self.id}:{self.handler}"


class StoredEvent(msgspec.Struct, frozen=True):
    """The columns a handler's `Event` is built from, as the store job wrote them (not read back)."""

    id: str
    source: str
    action: str
    sent_at: int
    """Unix seconds (the `Event` has it as a datetime)."""
    received_at: datetime
    payload: str
    """The payload's exact JSON text (`events.payload`), decoded for each `Event`."""
    request_id: str = ""
    """The ingest request's id, as `Event.request_id`."""
    vendor_event_id: str | None = None
    headers: str | None = None
    """The kept request headers as a JSON object (`events.headers`)."""
    body: str = ""
    """The exact request body (`events.body`): what a forward sends."""


StoredLike: TypeAlias = "EventRow | StoredEvent"
"""What an `Event` is built from: the stored row, or what the store job just wrote."""

_decode_payload = msgspec.json.Decoder(dict[str, Any]).decode
_decode_headers = msgspec.json.Decoder(dict[str, str]).decode


def build_event(row: StoredLike, attempt: int, handler: str) -> Event:
    """The `Event` a handler (or an `ordering_key`) sees for one stored event."""
    return Event(
        id=row.id,
        source=row.source,
        action=row.action,
        sent_at=datetime.fromtimestamp(row.sent_at, UTC),
        received_at=row.received_at,
        payload=_decode_payload(row.payload),
        attempt=attempt,
        handler=handler,
        request_id=row.request_id,
        vendor_event_id=row.vendor_event_id,
        headers=_decode_headers(row.headers) if row.headers else {},
        body=row.body,
    )


class PermanentError(Exception):
    """Raise from a handler to make its delivery `dead` at once, with no retry."""


class RetryAfter(Exception):
    """Raise from a handler to be retried after `seconds` (capped by `retry_max_seconds`) instead of the
    backoff: a receiver's `Retry-After` says when it can take the event again."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class DeliveryError(Exception):
    """An error whose message is the whole `last_error`, without the type name and source line that
    describe a handler's own exceptions: built-in handlers (forwards) word their failures themselves."""


class DeadDelivery(DeliveryError, PermanentError):
    """A built-in handler's failure that retrying cannot fix (a blocked address, a 410)."""


class RetryDeliveryAfter(DeliveryError, RetryAfter):
    """A built-in handler's failure to retry at a time the receiver named."""
