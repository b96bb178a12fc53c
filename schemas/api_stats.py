"""The `GET /v1/stats` shape, shared by the read API and `hookyard stats`.

One struct for both so the terminal and the dashboard can never disagree.
Every known status is present (zero when none) so a dashboard can plot a
series without guessing which keys will appear.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class EventCounts(msgspec.Struct, kw_only=True):
    total: int
    """Events received at or after `since`."""
    by_action: dict[str, int]
    by_status: dict[str, int]


class DeliveryCounts(msgspec.Struct, kw_only=True):
    by_status: dict[str, int]
    """Deliveries of the events counted in `events` (received at or after `since`)."""


class Stats(msgspec.Struct, kw_only=True):
    since: datetime
    events: EventCounts
    deliveries: DeliveryCounts
    queues: dict[str, int]
    """`<queue>`: jobs waiting; `<queue>:scheduled` and `<queue>:failed`: RQ registry sizes."""
    oldest_pending_seconds: float | None
    """Age of the oldest delivery still pending or retrying, over all time; None if there is none."""
