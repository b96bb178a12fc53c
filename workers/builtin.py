"""Built-in handlers. `hookyard dev` loads this module so a first event visibly runs one."""

from __future__ import annotations

import structlog

from workers.event import Event
from workers.registry import handler

log = structlog.get_logger("hookyard.handlers")


@handler("*", name="log-event")
def log_event(event: Event) -> None:
    """Logs that the event arrived (ids and action only: payloads stay out of logs)."""
    log.info("handled", event_id=event.id, request_id=event.request_id, action=event.action, attempt=event.attempt)
