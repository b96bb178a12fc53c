"""OpenTelemetry tracing: one trace per event, off unless the standard OTEL_* variables ask for it.

On when the `otel` extra is installed and `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_TRACES_EXPORTER`) is set, and
`OTEL_SDK_DISABLED` is not `true`; everything else (protocol, headers,
sampler, batch delays, service name) is the SDK's own reading of OTEL_*.
Off, `tracer()` is None: the hot paths check that once and run exactly the
code they run without tracing, and no OpenTelemetry module is imported.

The W3C trace context travels with each event: ingest writes the
`traceparent` of its enqueue span into `QueuedEvent.trace` (and so into the
RQ job and the spool), and the worker's spans are its children.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

log = structlog.get_logger("hookyard.tracing")

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_tracer: Tracer | None = None
_configured = False


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Do the OTEL_* variables ask for traces? (The SDK's own default exporter would be `otlp`
    to localhost; hookyard exports nothing unless told where.)"""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter) or any(env.get(name, "").strip() for name in _ENDPOINTS)


def tracer(service_name: str = "hookyard") -> Tracer | None:
    """This process's tracer, set up on first call; None when tracing is off (or the extra is missing)."""
    global _tracer, _configured
    if _configured:
        return _tracer
    _configured = True
    if not wanted():
        return None
    try:
        _tracer = _set_up(service_name)
    except ImportError as exc:
        log.warning("tracing_unavailable", reason=str(exc), hint="pip install 'hookyard[otel]'")
        return None
    log.info("tracing_on", service=os.environ.get("OTEL_SERVICE_NAME", service_name))
    return _tracer


def _set_up(service_name: str) -> Tracer:
    # The otel extra is optional: nothing of it is imported unless tracing is on.
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter  # noqa: PLC0415

    resource = Resource.create({"service.name": service_name}).merge(OTELResourceDetector().detect())
    if os.environ.get("OTEL_SERVICE_NAME"):
        resource = resource.merge(Resource.create({"service.name": os.environ["OTEL_SERVICE_NAME"]}))
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    elif os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        exporter = OTLPSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as HTTPSpanExporter,
        )

        exporter = HTTPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # the last spans are sent when the process ends
    return trace.get_tracer("hookyard")


def shutdown() -> None:
    """Send what is buffered now (a worker about to exit, a test)."""
    if _tracer is None:
        return
    from opentelemetry import trace  # noqa: PLC0415

    provider: Any = trace.get_tracer_provider()
    provider.force_flush()


def extract(traceparent: str | bytes | None, tracestate: str | bytes | None = None) -> Context | None:
    """The W3C context a `traceparent` (and `tracestate`) names; None for no or a malformed header."""
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    carrier = {"traceparent": _text(traceparent)}
    if tracestate:
        carrier["tracestate"] = _text(tracestate)
    return TraceContextTextMapPropagator().extract(carrier)


def current_traceparent() -> str:
    """The `traceparent` of the current span, to carry inside a queued event ('' if none)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def span(
    name: str, parent: str = "", kind: str = "INTERNAL", attributes: Mapping[str, str | int] | None = None
) -> Iterator[Span | None]:
    """A span named `name`, child of the `parent` traceparent (or of the current span); a no-op when off."""
    active = tracer()
    if active is None:
        yield None
        return
    from opentelemetry.trace import SpanKind  # noqa: PLC0415

    with active.start_as_current_span(
        name, context=extract(parent) if parent else None, kind=SpanKind[kind], attributes=attributes
    ) as current:
        yield current


@contextmanager
def store_spans(events: Sequence[tuple[str, str]]) -> Iterator[dict[str, str]]:
    """One `store` span per (event id, traceparent) that has a trace, around the batch's store.

    Yields event id -> the store span's `traceparent`: the parent of that event's deliveries.
    A batch holds events of many traces, so each gets its own span over the same work.
    """
    active = tracer()
    traced = [(event_id, parent) for event_id, parent in events if parent]
    if active is None or not traced:
        yield {}
        return
    from opentelemetry.trace import SpanKind, set_span_in_context  # noqa: PLC0415
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    spans = {
        event_id: active.start_span(
            "store", context=extract(parent), kind=SpanKind.CONSUMER, attributes={"hookyard.event_id": event_id}
        )
        for event_id, parent in traced
    }
    children: dict[str, str] = {}
    for event_id, started in spans.items():
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(started))
        children[event_id] = carrier["traceparent"]
    try:
        yield children
    finally:
        for started in spans.values():
            started.end()


def outcome(current: Span | None, status: str, error: str | None) -> None:
    """Mark a delivery span with what came of the attempt (an error status unless it succeeded)."""
    if current is None:
        return
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    current.set_attribute("hookyard.outcome", status)
    if error is not None:
        current.set_status(Status(StatusCode.ERROR, error[:200]))


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
