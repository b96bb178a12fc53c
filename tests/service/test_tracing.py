"""Tracing, as an OpenTelemetry collector sees it: one trace per event, from the sender's span to the
handler's own calls, exported over OTLP/HTTP to a real (tiny) receiver; and nothing at all when off."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import msgspec
import pytest
from rq import Queue

from schemas.wire import QueuedEvent
from tests.conftest import Config, Process, gxm_body, gxm_headers, wait_for, wait_http
from tests.otlp import ReceivedSpan, Receiver, otlp_receiver
from workers.shared import tracing
from workers.shared.serializer import JSONSerializer

pytestmark = pytest.mark.process

SERVER, PRODUCER, CONSUMER, INTERNAL = 2, 4, 5, 1  # OTLP's SpanKind numbers


def test_tracing_is_off_unless_otel_variables_ask():
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_SERVICE_NAME": "x"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not tracing.wanted({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})


@dataclass
class Sent:
    env: dict[str, str]
    trace_id: str
    sender_span: str
    event_id: str


def _serve_and_send(otlp: Receiver, config: Config, spawn: Callable[..., Process]) -> Sent:
    """A traced `hookyard serve` exporting to `otlp`, and one event posted to it under a sender's traceparent."""
    env = config.env(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url, OTEL_BSP_SCHEDULE_DELAY="50", OTEL_SERVICE_NAME="hookyard-test"
    )
    spawn(["serve"], env, name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_http(f"{base}/health/live")
    trace_id, sender_span = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.post(
        f"{base}/webhooks/gxm",
        content=gxm_body("LOCATION:CREATED"),
        headers={**gxm_headers(), "traceparent": f"00-{trace_id}-{sender_span}-01"},
        timeout=5,
    )
    assert response.status_code == 202
    return Sent(env, trace_id, sender_span, response.json()["data"]["id"])


def _spans(otlp: Receiver, trace_id: str, wanted: set[str]) -> dict[str, ReceivedSpan]:
    def complete() -> dict[str, ReceivedSpan]:
        spans = {span.name: span for span in otlp.trace(trace_id)}
        return spans if wanted <= spans.keys() else {}

    found: dict[str, ReceivedSpan] = wait_for(complete, 20, 0.1, f"the spans {sorted(wanted)}")
    return found


def _queued(config) -> list[QueuedEvent]:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        jobs = Queue(config.settings.redis.queue, connection=client, serializer=JSONSerializer).get_jobs()
        return [msgspec.convert(event, QueuedEvent) for job in jobs for event in job.args[0]]
    finally:
        client.close()


def test_off_by_default_the_queued_event_carries_no_trace(make_config, server_for):
    config = make_config()
    base = server_for(config)
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    response = httpx.post(
        f"{base}/webhooks/gxm", content=gxm_body(), headers={**gxm_headers(), "traceparent": traceparent}, timeout=5
    )
    assert response.status_code == 202
    (event,) = _queued(config)
    assert event.trace == ""


@pytest.mark.timeout(60)
def test_the_api_side_of_an_events_trace_honours_traceparent_and_travels_in_the_job(make_config, spawn):
    with otlp_receiver() as otlp:
        config = make_config()
        sent = _serve_and_send(otlp, config, spawn)
        trace_id, sender_span, event_id = sent.trace_id, sent.sender_span, sent.event_id
        spans = _spans(otlp, trace_id, {"POST /webhooks/{source}", "enqueue"})
        (queued,) = _queued(config)

    ingest, enqueue = spans["POST /webhooks/{source}"], spans["enqueue"]
    assert ingest.parent_span_id == sender_span  # the incoming traceparent is honoured
    assert enqueue.parent_span_id == ingest.span_id
    assert (ingest.kind, enqueue.kind) == (SERVER, PRODUCER)
    assert ingest.attributes["http.response.status_code"] == 202
    assert enqueue.attributes["hookyard.event_id"] == event_id
    assert queued.trace == f"00-{trace_id}-{enqueue.span_id}-01"  # the worker's spans will hang under it


@pytest.mark.timeout(120)
def test_one_event_is_one_trace_from_the_senders_span_to_the_handlers_own(make_config, spawn):
    with otlp_receiver() as otlp:
        config = make_config(handler_modules=["tests.plugins.traced"])
        sent = _serve_and_send(otlp, config, spawn)
        trace_id, sender_span, event_id = sent.trace_id, sent.sender_span, sent.event_id
        worker = spawn(["worker", "--burst"], sent.env, name="worker")
        assert worker.popen.wait(timeout=60) == 0, worker.output()
        wanted = {"POST /webhooks/{source}", "enqueue", "store", "deliver traced-crm", "POST crm.example/locations"}
        spans = _spans(otlp, trace_id, wanted)
        print("\nthe trace of one event, as the OTLP receiver saw it (trace id, parent span -> span):")
        for span in otlp.trace(trace_id):
            print("  " + span.line())

    ingest, enqueue, store = spans["POST /webhooks/{source}"], spans["enqueue"], spans["store"]
    deliver, crm = spans["deliver traced-crm"], spans["POST crm.example/locations"]
    assert len(otlp.trace(trace_id)) == len(wanted)  # one trace, nothing else in it
    assert ingest.parent_span_id == sender_span
    assert enqueue.parent_span_id == ingest.span_id
    assert store.parent_span_id == enqueue.span_id  # across Redis: the context travelled in the job
    assert deliver.parent_span_id == store.span_id
    assert crm.parent_span_id == deliver.span_id  # the handler's own calls join the trace
    assert (store.kind, deliver.kind) == (CONSUMER, INTERNAL)
    assert store.attributes["hookyard.event_id"] == event_id
    assert deliver.attributes["hookyard.handler"] == "traced-crm"
    assert deliver.attributes["hookyard.outcome"] == "succeeded"
    assert crm.attributes["hookyard.test.event_id"] == event_id
    assert {ingest.service, enqueue.service, store.service, deliver.service} == {"hookyard-test"}
