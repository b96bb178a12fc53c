"""One log stream: with `[log] format = "json"` every line a process writes is one JSON object.

uvicorn, rq and Alembic log through the standard library; their records are
rendered by the same structlog processors as ours, and lines written inside a
request carry its `request_id` (bound with contextvars at the boundary).
"""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, enqueue_events, gxm_body, gxm_headers, wait_for

pytestmark = pytest.mark.process

JSON_LOGS = {"format": "json", "level": "info", "access": True}


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every non-empty line, decoded; a line that is not a JSON object fails the test, naming it."""
    lines = []
    for line in output.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(value, dict), line
        assert {"event", "level", "timestamp"} <= value.keys(), line
        lines.append(value)
    return lines


def test_serve_writes_only_json_lines_with_uvicorn_and_access_lines_carrying_the_request_id(make_config, spawn):
    config = make_config(log=JSON_LOGS)
    process = spawn(["serve"], config.env(), name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_for(lambda: "Application startup complete" in process.output(), 20, 0.1, "uvicorn to start")
    accepted = httpx.post(
        f"{base}/webhooks/gxm", content=gxm_body(), headers={**gxm_headers(), "X-Request-ID": "req-logs-1"}, timeout=5
    )
    assert accepted.status_code == 202
    listed = httpx.get(f"{base}/v1/events", headers={"X-API-Key": ADMIN_KEY, "X-Request-ID": "req-logs-2"}, timeout=5)
    assert listed.status_code == 200
    wait_for(lambda: "req-logs-2" in process.output(), 10, 0.1, "the access lines")
    assert process.stop(signal.SIGTERM) == 0

    lines = json_lines(process.output())
    uvicorn = [line for line in lines if line.get("logger", "").startswith("uvicorn.error")]
    assert any(line["event"].startswith("Application startup complete") for line in uvicorn), uvicorn
    assert any(line["event"].startswith("Shutting down") for line in uvicorn), uvicorn
    (ingest,) = [line for line in lines if line.get("request_id") == "req-logs-1" and line["event"] == "http_request"]
    assert (ingest["method"], ingest["path"], ingest["status"], ingest["logger"]) == (
        "POST",
        "/webhooks/gxm",
        202,
        "uvicorn.access",
    )
    (read,) = [line for line in lines if line.get("request_id") == "req-logs-2" and line["event"] == "http_request"]
    assert (read["path"], read["status"]) == ("/v1/events", 200)


def test_no_access_lines_unless_asked(make_config, spawn):
    config = make_config(log={"format": "json", "level": "info"})
    process = spawn(["serve"], config.env(), name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_for(lambda: "Application startup complete" in process.output(), 20, 0.1, "uvicorn to start")
    assert httpx.post(f"{base}/webhooks/gxm", content=gxm_body(), headers=gxm_headers(), timeout=5).status_code == 202
    assert process.stop(signal.SIGTERM) == 0
    assert not [line for line in json_lines(process.output()) if line["event"] == "http_request"]


def test_worker_and_migrate_write_only_json_lines_and_a_handlers_own_line_names_its_event(make_config, spawn):
    config = make_config(log=JSON_LOGS, handler_modules=["tests.plugins.traced"])
    migrate = spawn(["migrate"], config.env(), name="migrate")
    assert migrate.popen.wait(timeout=60) == 0
    migrate_lines = [line for line in migrate.output().splitlines() if line.startswith("{")]
    assert any(line["logger"].startswith("alembic") for line in json_lines("\n".join(migrate_lines)))

    (event_id,) = enqueue_events(config, gxm_body())
    worker = spawn(["worker", "--burst"], config.env(), name="worker")
    assert worker.popen.wait(timeout=60) == 0
    lines = json_lines(worker.output())
    stored = [line for line in lines if line["event"] == "events_stored"]
    assert stored, lines
    assert event_id in stored[0]["event_ids"]
    (client,) = [line for line in lines if line.get("logger") == "crm-client"]  # stdlib, inside the handler
    assert client["event"] == "crm answered 201"
    assert client["event_id"] == event_id
    assert client["handler"] == "traced-crm"
    assert client["job_id"]
    assert client["request_id"]
