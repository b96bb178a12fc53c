"""Wire shapes of the `/v1` read API, as the OpenAPI document shows them.

Each response is one concrete envelope Struct (not a generic one) so that the
OpenAPI document names every shape; they take `meta` and `warnings` from two
private bases. Timestamps are aware UTC datetimes, which
msgspec writes as ISO 8601 with `Z`. A stored payload travels as
`msgspec.Raw`: the exact text the vendor sent, never decoded and re-encoded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from schemas.api_stats import Stats
from schemas.wire import ErrorData

EventStatusName = Literal["stored", "processing", "processed", "failed"]
DeliveryStatusName = Literal["pending", "retrying", "succeeded", "dead", "skipped"]


class Delivery(msgspec.Struct, kw_only=True):
    """One handler's delivery of one event."""

    handler: str
    status: str
    attempts: int
    """Attempts started so far; a replay continues the count."""
    max_attempts: int
    """The attempt number at which it goes dead (a replay raises it)."""
    last_error: str | None
    updated_at: datetime
    created_at: datetime
    last_started_at: datetime | None
    last_duration_ms: float | None
    next_attempt_at: datetime | None
    """When a retrying delivery runs next."""


class Event(msgspec.Struct, kw_only=True):
    id: str
    source: str
    action: str
    status: str
    sent_at: datetime
    received_at: datetime
    payload: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    """The stored `data.payload` exactly as sent; only with `select=payload` on lists."""
    deliveries: list[Delivery] | msgspec.UnsetType = msgspec.UNSET
    """Only on one event, or with `select=deliveries` on lists."""
    headers: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    """The request headers kept (lower-case names; never credentials or signatures); with `select=headers`."""


class PageMeta(msgspec.Struct, kw_only=True):
    next_cursor: str | None
    """Pass back as `cursor` for the next page; null on the last page."""
    limit: int


class _Envelope(msgspec.Struct, kw_only=True):
    """The `meta` and `warnings` of every unpaged response; each subclass narrows `data`, which stays the first key."""

    data: Any
    meta: dict[str, Any] = msgspec.field(default_factory=dict)
    warnings: dict[str, Any] = msgspec.field(default_factory=dict)


class _Page(msgspec.Struct, kw_only=True):
    """The `meta` and `warnings` of every paged list; each subclass narrows `data`, which stays the first key."""

    data: Any
    meta: PageMeta
    warnings: dict[str, Any] = msgspec.field(default_factory=dict)


class EventPage(_Page, kw_only=True):
    data: list[Event]


class EventEnvelope(_Envelope, kw_only=True):
    data: Event


class Handler(msgspec.Struct, kw_only=True):
    name: str
    patterns: list[str]
    max_attempts: int
    timeout_seconds: float
    paused: bool = False
    """`POST /v1/handlers/{name}/pause`: its deliveries wait `pending`, uncharged, until resumed."""


class HandlerList(_Envelope, kw_only=True):
    data: list[Handler]


class ReplayRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    handlers: list[str] | None = None
    """Handler names to re-run; all of the event's (and any now matching it) when absent."""


class ReplayedDelivery(msgspec.Struct, kw_only=True):
    handler: str
    state: Literal["queued", "running"]
    """`running`: an attempt is under way now; it got the fresh budget but is not queued twice."""
    new: bool
    """True for a handler that matches the event but had never run on it."""
    attempts: int
    max_attempts: int


class ReplayResult(msgspec.Struct, kw_only=True):
    event_id: str
    deliveries: list[ReplayedDelivery]


class ReplayEnvelope(_Envelope, kw_only=True):
    data: ReplayResult


class StatsEnvelope(_Envelope, kw_only=True):
    data: Stats


class ErrorMeta(msgspec.Struct, kw_only=True):
    code: str
    """`ERR:MSG:...`; validation errors name what was wrong (`ERR:MSG:VALIDATION:LIMIT`)."""


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    data: ErrorData
    meta: ErrorMeta
    warnings: dict[str, Any] = msgspec.field(default_factory=dict)


class RateLimits(msgspec.Struct, kw_only=True):
    requests_per_minute: int | msgspec.UnsetType = msgspec.UNSET
    """A key's or a source's request rate (429 on a request)."""
    streams: int | msgspec.UnsetType = msgspec.UNSET
    """Live streams allowed open (429 on `/v1/stream`)."""


class RateCurrent(msgspec.Struct, kw_only=True):
    requests: int | msgspec.UnsetType = msgspec.UNSET
    streams: int | msgspec.UnsetType = msgspec.UNSET


class RateLimitWarnings(msgspec.Struct, kw_only=True):
    limits: RateLimits
    current: RateCurrent


class RateLimitedEnvelope(msgspec.Struct, kw_only=True):
    data: ErrorData
    meta: ErrorMeta
    warnings: RateLimitWarnings


class CursorKey(msgspec.Struct, array_like=True, frozen=True):
    """What an opaque page cursor holds: a keyset position and the query it belongs to."""

    version: int
    received_at_us: int
    """The row's sort time (`received_at`, or `updated_at` for deliveries), in microseconds."""
    id: str | int
    """The tie-breaker: an event id, or a delivery's or rejection's row id."""
    order: str
    query: str
    """A short hash of the filters, so a cursor is refused with other filters."""


class DeliveryRecord(msgspec.Struct, kw_only=True):
    """One delivery in `GET /v1/deliveries`: the handler's outcome with its event's source and action."""

    event_id: str
    source: str
    action: str
    handler: str
    status: str
    attempts: int
    last_error: str | None
    updated_at: datetime


class DeliveryPage(_Page, kw_only=True):
    data: list[DeliveryRecord]


class ReplayFilter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which deliveries a bulk replay re-runs; the event filters mean what they mean on `/v1/events`.

    Unknown keys are refused, so a misspelt filter can never widen a replay to everything.
    """

    source: str | None = None
    action: str | None = None
    """An exact action, `RESOURCE:*` or `*:VERB`."""
    status: str | None = None
    """The event's status."""
    delivery_status: str | None = None
    """Only deliveries in this status (`dead` for dead letters)."""
    handlers: list[str] | None = None
    """Only these handlers' deliveries."""
    since: str | None = None
    """ISO 8601, on the event's `received_at` (inclusive)."""
    until: str | None = None
    """ISO 8601, on the event's `received_at` (exclusive)."""


class ReplayCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    filter: ReplayFilter
    dry_run: bool = False
    """Count what the replay would re-run; change nothing."""


class ReplayCounts(msgspec.Struct, kw_only=True):
    events: int
    deliveries: int


class ReplayCountsEnvelope(_Envelope, kw_only=True):
    data: ReplayCounts


ReplayStatusName = Literal["queued", "running", "done"]


class BulkReplay(msgspec.Struct, kw_only=True):
    """A bulk replay: `done` once every chosen delivery has been queued again (not run)."""

    id: str
    status: ReplayStatusName
    events: int
    deliveries: int
    queued: int
    """Deliveries queued again so far (progress; deliveries purged meanwhile are not counted)."""
    created_at: datetime
    finished_at: datetime | None


class BulkReplayEnvelope(_Envelope, kw_only=True):
    data: BulkReplay


class Rejection(msgspec.Struct, kw_only=True):
    """A row of the rejection ledger: `count` equal rejections within one second."""

    id: int
    source: str
    status: int
    code: str
    client_ip: str
    request_id: str
    """The first merged request's `X-Request-ID`."""
    received_at: datetime
    count: int


class RejectionPage(_Page, kw_only=True):
    data: list[Rejection]
