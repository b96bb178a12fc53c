"""`/v1/stats`, `/v1/handlers` and the `/metrics` additions, against real Redis and SQL."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import gxm_body, gxm_headers, wait_http
from tests.service.api.conftest import ADMIN, READ, ingest
from workers.event import PermanentError


def _fail(event):
    raise PermanentError("no")


def test_stats_counts_and_since(client, worker, registry, insert_events):
    registry.handler("LOCATION:*", name="crm")(lambda event: None)
    registry.handler("USER:*", name="fails")(_fail)
    ingest(client, action="LOCATION:CREATED")
    ingest(client, action="USER:DELETED")
    worker.drain()
    body = client.get("/v1/stats", headers=READ).json()
    data = body["data"]
    assert data["since"].endswith("Z")
    assert data["events"]["total"] == 3  # the dead delivery's own HOOKYARD:DELIVERY:DEAD event counts too
    assert data["events"]["by_action"] == {"LOCATION:CREATED": 1, "USER:DELETED": 1, "HOOKYARD:DELIVERY:DEAD": 1}
    assert data["events"]["by_status"]["failed"] == 1
    assert data["deliveries"]["by_status"]["dead"] == 1
    assert data["deliveries"]["by_status"]["succeeded"] == 1
    assert data["queues"]["hookyard"] == 0
    assert data["oldest_pending_seconds"] is None
    future = client.get("/v1/stats", params={"since": "2999-01-01T00:00:00Z"}, headers=READ).json()["data"]
    assert future["events"]["total"] == 0
    bad = client.get("/v1/stats", params={"since": "soon"}, headers=READ)
    assert bad.status_code == 400
    assert bad.json()["meta"]["code"] == "ERR:MSG:VALIDATION:SINCE"


def test_handlers_lists_the_registry(client, registry):
    registry.handler("LOCATION:*", "*:DELETED", name="crm", max_attempts=3, timeout_seconds=2)(lambda event: None)
    registry.handler("*", name="audit")(lambda event: None)
    body = client.get("/v1/handlers", headers=READ).json()
    assert body["data"] == [
        {"name": "audit", "patterns": ["*"], "max_attempts": 5, "timeout_seconds": 5.0, "paused": False},
        {
            "name": "crm",
            "patterns": ["LOCATION:*", "*:DELETED"],
            "max_attempts": 3,
            "timeout_seconds": 2.0,
            "paused": False,
        },
    ]


def test_api_process_loads_configured_handler_modules(make_config, spawn):
    config = make_config(handler_modules=["tests.service.api.sample_handlers", "no.such.module"])
    process = spawn(["serve"], config.env(), name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_http(f"{base}/health/live")
    names = [h["name"] for h in httpx.get(f"{base}/v1/handlers", headers=ADMIN, timeout=5).json()["data"]]
    process.stop()
    assert names == ["sample-crm"]
    assert "handler_module_not_loaded" in process.output()


@pytest.mark.process
def test_metrics_show_queue_depth_dead_and_handler_outcomes(config, server, worker, registry):
    registry.handler("LOCATION:*", name="crm")(lambda event: None)
    registry.handler("LOCATION:*", name="fails")(_fail)
    response = httpx.post(
        f"{server}/webhooks/gxm",
        content=gxm_body(),
        headers=gxm_headers(),
    )
    assert response.status_code == 202
    worker.drain()

    def scrape() -> str:
        text = httpx.get(f"{server}/metrics", headers=READ, timeout=5).text
        return text if 'hookyard_deliveries_total{handler="fails",outcome="dead"} 1.0' in text else ""

    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline and not text:
        text = scrape()
        time.sleep(0.5)
    assert text, httpx.get(f"{server}/metrics", headers=READ, timeout=5).text
    assert 'hookyard_deliveries_total{handler="crm",outcome="succeeded"} 1.0' in text
    assert 'hookyard_handler_duration_seconds_count{handler="crm"} 1.0' in text
    assert 'hookyard_handler_duration_seconds_bucket{handler="crm",le="+Inf"} 1.0' in text
    assert 'hookyard_queue_events{queue="hookyard"} 0.0' in text
    assert 'hookyard_queue_jobs{queue="hookyard",state="waiting"} 0.0' in text
    assert "hookyard_deliveries_dead 1.0" in text
    assert "hookyard_oldest_pending_seconds 0.0" in text
    assert "hookyard_events_received_total" in text
    names = [line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert all(name.startswith(("hookyard_", "python_", "process_")) for name in names)
