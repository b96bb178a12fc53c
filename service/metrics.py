"""Prometheus metrics of the API process; every name starts with `hookyard_`.

With `hookyard serve --workers N` each API process counts only the requests
it answered, so `serve` gives them a shared `PROMETHEUS_MULTIPROC_DIR` and the
scrape reads every process's counters from there (prometheus_client's
multiprocess mode): the numbers do not depend on which process answers.
Queue, delivery and handler numbers come from Redis and the database
(`service.api.metrics`) and are the same in every process.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Coroutine
from functools import cache
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

EVENTS_RECEIVED = Counter("hookyard_events_received_total", "Events accepted (202)", ["source"])
EVENTS_REJECTED = Counter("hookyard_events_rejected_total", "Ingest requests refused", ["source", "code"])
EVENTS_DUPLICATE = Counter("hookyard_events_duplicate_total", "Re-deliveries answered 200", ["source"])
EVENTS_SPOOLED = Counter("hookyard_events_spooled_total", "Events written to the local spool", ["source"])
INGEST_LATENCY = Histogram(
    "hookyard_ingest_seconds",
    "Time from request start to the ingest answer",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
HTTP_REQUESTS = Counter(
    "hookyard_http_requests_total",
    "Requests answered by the API besides ingest (/v1, health, schema), by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "hookyard_http_request_seconds",
    "Time to answer a request besides ingest, by route template (a stream counts until it closes)",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)

STREAM_POLLS = Counter(
    "hookyard_stream_polls_total", "Database reads of the live streams' shared feed (one per interval per process)"
)
STREAMS_OPEN = Gauge(
    "hookyard_streams_open", "Live streams open (/v1/stream and the console's live tail)", multiprocess_mode="livesum"
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
"""`route` of a request no route matched (a 404): paths a scanner makes up never become label values."""

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Coroutine[Any, Any, None]]


@cache
def scrape_registry() -> CollectorRegistry:
    """What `/metrics` shows: every process's counters in multiprocess mode, else this process's.

    Every name starts with `hookyard_` (CONTRACT section 6): prometheus_client's default `python_*` and
    `process_*` collectors are dropped; one process's own figures come back as `hookyard_process_*`
    (not in multiprocess mode, where they would describe whichever process answered the scrape).
    """
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    for collector in (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR):
        with contextlib.suppress(KeyError):  # already dropped
            REGISTRY.unregister(collector)
    ProcessCollector(namespace="hookyard", registry=REGISTRY)
    return REGISTRY


def http_metrics(app: ASGIApp) -> ASGIApp:
    """Count and time each request Litestar answers, labelled by its route template (`/v1/events/{event_id}`)."""

    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = scope.get("path_template") or UNMATCHED  # Litestar's router sets it on the scope
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)

    return middleware
