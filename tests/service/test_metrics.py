"""`/metrics` as Prometheus sees it: counters that add up over API processes, queue depth in events,
no state inside the `queue` label, build info, HTTP metrics for `/v1`, and never public on the ingest port."""

from __future__ import annotations

import re

import httpx
import msgspec
import pytest

from service.api.metrics import waiting_events
from service.embedded_redis import free_port
from tests.conftest import READ_KEY, enqueue_events, gxm_body, gxm_headers, wait_for, wait_http
from tests.service.conftest import assert_error

pytestmark = pytest.mark.process

KEY = {"X-API-Key": READ_KEY}


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a text exposition, or None if it is absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match and (match.group(1) or "") == wanted:
            return float(match.group(2))
    return None


def test_two_api_processes_report_the_same_counters_whichever_answers(make_config, spawn):
    config = make_config()
    spawn(["serve", "--workers", "2"], config.env(), name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_http(f"{base}/health/live")
    with httpx.Client(timeout=5) as client:  # each request on a fresh connection: both processes answer some
        for n in range(20):
            body = gxm_body(payload={"n": n})
            response = client.post(
                f"{base}/webhooks/gxm", content=body, headers={**gxm_headers(), "Connection": "close"}
            )
            assert response.status_code == 202
    seen = set()
    for _ in range(12):
        text = httpx.get(f"{base}/metrics", headers={**KEY, "Connection": "close"}, timeout=5).text
        seen.add(sample(text, "hookyard_events_received_total", source="gxm"))
    assert seen == {20.0}


def test_queue_depth_counts_events_and_keeps_state_out_of_the_queue_label(make_config, server_for):
    config = make_config()
    base = server_for(config)
    enqueue_events(config, *(gxm_body(payload={"n": n}) for n in range(3)))  # one store job holding 3 events

    def scraped() -> str:
        text = httpx.get(f"{base}/metrics", headers=KEY, timeout=5).text
        return text if sample(text, "hookyard_queue_events", queue="hookyard") == 3.0 else ""

    text = wait_for(scraped, 15, 0.5, "the queue's 3 events in /metrics")
    assert sample(text, "hookyard_queue_jobs", queue="hookyard", state="waiting") == 1.0
    assert sample(text, "hookyard_queue_jobs", queue="hookyard", state="scheduled") == 0.0
    assert "hookyard_queue_depth" not in text
    assert not re.search(r'queue="[^"]*:', text), "a state inside the queue label"
    (info,) = [line for line in text.splitlines() if line.startswith("hookyard_build_info{")]
    assert 'version="' in info
    assert info.endswith(" 1.0")


def test_waiting_events_beyond_the_scan_limit_are_extrapolated():
    assert waiting_events(jobs=3, scanned=3, events=40) == 40
    assert waiting_events(jobs=20_000, scanned=10_000, events=50_000) == 100_000
    assert waiting_events(jobs=0, scanned=0, events=0) == 0


def test_v1_requests_are_counted_by_route_template(config, server):
    headers = {**KEY}
    assert httpx.get(f"{server}/v1/events", headers=headers, timeout=5).status_code == 200
    missing = "01a20856-3016-738b-a446-277ac917831e"
    assert httpx.get(f"{server}/v1/events/{missing}", headers=headers, timeout=5).status_code == 404
    assert httpx.get(f"{server}/v1/no-such-thing/{missing}", headers=headers, timeout=5).status_code == 404
    text = httpx.get(f"{server}/metrics", headers=KEY, timeout=5).text
    assert sample(text, "hookyard_http_requests_total", method="GET", route="/v1/events", status="200") == 1.0
    templates = re.findall(r'hookyard_http_requests_total\{method="GET",route="([^"]+)",status="404"\}', text)
    assert "/v1/events/{event_id}" in templates
    assert "unmatched" in templates
    assert missing not in text, "an id became a label value"
    assert sample(text, "hookyard_http_request_seconds_count", method="GET", route="/v1/events") == 1.0


def test_every_exported_name_starts_with_hookyard(config, server):
    text = httpx.get(f"{server}/metrics", headers=KEY, timeout=5).text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert names, text
    assert sorted(name for name in names if not name.startswith("hookyard_")) == []
    assert "hookyard_process_resident_memory_bytes" in names  # the process's own figures, renamed


def test_metrics_on_the_ingest_port_need_a_key_from_elsewhere(make_config, server_for):
    """A scrape from this host needs no key (CONTRACT section 6); one from another host does."""
    config = make_config(server={"trusted_proxies": ["127.0.0.1/32"]})
    server = server_for(config)
    assert httpx.get(f"{server}/metrics", timeout=5).status_code == 200
    remote = {"X-Forwarded-For": "203.0.113.7"}  # what the trusted proxy says of a client elsewhere
    refused = httpx.get(f"{server}/metrics", headers=remote, timeout=5)
    body = assert_error(refused, 401, "ERR:MSG:UNAUTHORIZED")
    assert "metrics_port" in body["data"]["detail"]
    assert refused.headers["www-authenticate"] == "Bearer"
    wrong = {**remote, "Authorization": "Bearer nope"}
    assert httpx.get(f"{server}/metrics", headers=wrong, timeout=5).status_code == 401
    assert httpx.get(f"{server}/metrics", headers={**remote, **KEY}, timeout=5).status_code == 200


def test_metrics_port_serves_metrics_only_and_the_ingest_port_none(make_config, server_for):
    port = free_port()
    config = make_config(server={"metrics_port": port})
    base = server_for(config)
    metrics = f"http://127.0.0.1:{port}"
    scraped = httpx.get(f"{metrics}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert "hookyard_build_info" in scraped.text
    assert httpx.get(f"{base}/metrics", headers=KEY, timeout=5).status_code == 404
    assert_error(httpx.get(f"{metrics}/v1/events", headers=KEY, timeout=5), 404, "ERR:MSG:NOT_FOUND")
    assert_error(
        httpx.post(f"{metrics}/webhooks/gxm", content=gxm_body(), headers=gxm_headers()), 404, "ERR:MSG:NOT_FOUND"
    )
    assert msgspec.json.decode(httpx.get(f"{base}/health/live", timeout=5).content)["data"]["status"] == "ok"
