"""A handler that opens a span of its own, as an instrumented HTTP client inside a handler would
(with tracing on, it must land inside the delivery's span, in the event's trace), and logs through
the standard library, as such a client does (that line must carry the event's ids)."""

from __future__ import annotations

import logging

from opentelemetry import trace

from workers import Event, handler


@handler("LOCATION:*", name="traced-crm")
def call_crm(event: Event) -> None:
    with trace.get_tracer("crm-client").start_as_current_span("POST crm.example/locations") as span:
        span.set_attribute("hookyard.test.event_id", event.id)
        logging.getLogger("crm-client").warning("crm answered 201")
