"""Prometheus metrics of the API process; every name starts with `hookyard_`."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_RECEIVED = Counter("hookyard_events_received_total", "Events accepted (202)", ["source"])
EVENTS_REJECTED = Counter("hookyard_events_rejected_total", "Ingest requests refused", ["source", "code"])
EVENTS_DUPLICATE = Counter("hookyard_events_duplicate_total", "Re-deliveries answered 200", ["source"])
EVENTS_SPOOLED = Counter("hookyard_events_spooled_total", "Events written to the local spool", ["source"])
INGEST_LATENCY = Histogram(
    "hookyard_ingest_seconds",
    "Time from request start to the ingest answer",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
