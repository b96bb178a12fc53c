"""A handler that always fails, once: its delivery goes dead at the first attempt (hookyard's own events)."""

from __future__ import annotations

from workers import Event, handler


@handler("INVOICE:FAILING", name="always-fails", max_attempts=1)
def always_fails(event: Event) -> None:
    raise RuntimeError(f"cannot handle {event.id}")
