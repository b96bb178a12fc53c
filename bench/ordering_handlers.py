"""The ordering bench's handler: a no-op on `*`, with an ordering key over the payload's `location_id`
when `BENCH_ORDERING=1`, without one otherwise, so the two runs differ only in the key."""

from __future__ import annotations

import os

from workers import Event, handler


def _location(event: Event) -> str:
    return str(event.payload["location_id"])


@handler("*", name="bench-ordered", ordering_key=_location if os.environ.get("BENCH_ORDERING") == "1" else None)
def bench_ordered(event: Event) -> None:
    """Does nothing: the run measures what ordering costs the worker, not a handler."""
