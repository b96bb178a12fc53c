"""Wire shapes: what vendors send, what ingest answers, what travels on the queue.

The ingest types decode the vendor body once, on the event loop. `payload`
is kept as `msgspec.Raw` so that the exact bytes the vendor sent (a `\\u0000`
escape included) are what we store and hand back, never a re-encoding.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# CONTRACT section 4's action pattern; `(?!\n)` because Python's `$` also matches before a final newline.
ACTION_PATTERN = r"^[A-Z][A-Z0-9_]*(:[A-Z][A-Z0-9_]*)+(?!\n)$"
MAX_SENT_AT = 253_402_300_799  # 9999-12-31T23:59:59Z

Action = Annotated[str, msgspec.Meta(pattern=ACTION_PATTERN, max_length=128)]
SentAt = Annotated[int, msgspec.Meta(ge=0, le=MAX_SENT_AT)]


class IngestData(msgspec.Struct):
    """`data` of a GuestXM webhook; unknown keys are allowed (and kept in the stored body)."""

    sent_at: SentAt
    action: Action
    payload: msgspec.Raw


class IngestEnvelope(msgspec.Struct):
    data: IngestData


class CheckedData(msgspec.Struct):
    """The same `data`, checked from the already-decoded object at ingest."""

    sent_at: SentAt
    action: Action
    payload: dict[str, Any]


class QueuedEvent(msgspec.Struct, frozen=True, array_like=True):
    """One accepted event as it travels through Redis (and the spool) to a worker.

    `array_like` keeps the job small; `body` is the exact request body as text.
    It carries everything the worker needs, because only ingest can run a
    source's locators (some read headers). Fields added later go at the end
    with defaults, so jobs and spool rows written by an older version still
    decode: an empty `action` means "read it from the GuestXM envelope".
    """

    id: str
    source: str
    fingerprint: str
    """The de-duplication key: of the vendor's event id when the source locates one, else of the body."""
    received_at_us: int
    request_id: str
    body: str
    action: str = ""
    sent_at: int = 0
    whole_body: bool = False
    """True: the payload is the whole body (format json); False: the envelope's `data.payload`."""
    vendor_event_id: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """The request headers kept with the event: lower-case names, no credentials or signatures."""


class Accepted(msgspec.Struct):
    id: str
    status: str
    duplicate: bool


class ErrorData(msgspec.Struct):
    status: int
    detail: str


class Envelope(msgspec.Struct):
    """The `{"data", "meta", "warnings"}` shape of every JSON response."""

    data: Any
    meta: dict[str, Any] = msgspec.field(default_factory=dict)
    warnings: dict[str, Any] = msgspec.field(default_factory=dict)
