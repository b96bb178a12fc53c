"""A handler module for tests that configure `[handlers] modules`."""

from __future__ import annotations

from workers import Event, handler


@handler("LOCATION:*", name="sample-crm")
def sync_location(event: Event) -> None:
    """Does nothing: the tests only need it registered."""
