"""Pause/resume and typed payloads through a real `hookyard serve` and a real worker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, READ_KEY, Config, ConfigFactory, Process, wait_for
from tests.plugins.ordered import runs
from tests.service.test_ordering import delivery, event_status, post

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def plugin_config(make_config: ConfigFactory, tmp_path: Path) -> tuple[Config, dict[str, str], Path]:
    config = make_config(handler_modules=["tests.plugins.ordered"])
    record = tmp_path / "record.txt"
    return config, config.env(HOOKYARD_TEST_RECORD=str(record)), record


def handlers(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/v1/handlers", headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return {h["name"]: h for h in response.json()["data"]}


def test_a_paused_handler_waits_uncharged_and_runs_on_resume(
    plugin_config: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[[Config], str],
) -> None:
    config, env, record = plugin_config
    base = server_for(config)
    spawn(["worker", "--processes", "2"], env, name="worker")
    assert handlers(base)["typed"]["paused"] is False

    refused = httpx.post(f"{base}/v1/handlers/typed/pause", headers={"X-API-Key": READ_KEY}, timeout=10)
    assert refused.status_code == 403
    unknown = httpx.post(f"{base}/v1/handlers/no-such-handler/pause", headers=ADMIN, timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["meta"]["code"] == "ERR:MSG:NOT_FOUND"
    paused = httpx.post(f"{base}/v1/handlers/typed/pause", headers=ADMIN, timeout=10)
    assert paused.status_code == 204
    assert handlers(base)["typed"]["paused"] is True
    assert handlers(base)["ordered"]["paused"] is False
    listed = subprocess.run(
        [sys.executable, "-m", "service.cli", "handlers", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert {h["name"]: h["paused"] for h in json.loads(listed.stdout)}["typed"] is True

    waiting = [post(base, "COMPANY:CREATED", 1000 + n, company_id=n) for n in range(5)]
    # Another handler's event, sent after them, runs: the worker has seen the paused ones too.
    other = post(base, "LOCATION:UPDATED", 2000, location_id=1)
    wait_for(lambda: delivery(config, other)[0] == "succeeded", timeout=30, what="an unpaused handler to run")
    wait_for(lambda: all(delivery(config, e)[0] == "pending" for e in waiting), timeout=30, what="stored")
    assert [delivery(config, e)[:2] for e in waiting] == [("pending", 0)] * 5
    assert {event_status(config, e) for e in waiting} == {"processing"}
    assert runs(record, "typed:int") == []

    resumed = httpx.post(f"{base}/v1/handlers/typed/resume", headers=ADMIN, timeout=10)
    assert resumed.status_code == 204
    assert handlers(base)["typed"]["paused"] is False
    wait_for(lambda: all(delivery(config, e)[:2] == ("succeeded", 1) for e in waiting), timeout=30, what="resumed runs")
    assert {event_status(config, e) for e in waiting} == {"processed"}
    assert sorted(r.event_id for r in runs(record, "typed:int")) == sorted(waiting)


def _metric(base: str, line: str) -> bool:
    return line in httpx.get(f"{base}/metrics", timeout=10).text


def test_a_payload_that_does_not_fit_the_struct_is_dead_at_once_and_replays_after_the_fix(
    plugin_config: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[[Config], str],
) -> None:
    config, env, record = plugin_config
    base = server_for(config)
    worker = spawn(["worker"], env, name="worker")

    fits = post(base, "COMPANY:CREATED", 1000, company_id=5)
    drifted = post(base, "COMPANY:CREATED", 1001, company_id="C-5")
    wait_for(lambda: delivery(config, fits)[0] == "succeeded", timeout=30, what="the fitting payload")
    wait_for(lambda: delivery(config, drifted)[0] == "dead", timeout=30, what="the drifted payload")
    _, attempts, error = delivery(config, drifted)
    assert attempts == 1  # dead at once: no retries
    assert error is not None
    assert error.startswith("payload does not match CompanyCreated:")
    assert "$.company_id" in error
    assert [r.event_id for r in runs(record, "typed:int")] == [fits]
    wait_for(
        lambda: _metric(base, 'hookyard_payload_mismatch_total{handler="typed"} 1.0'),
        timeout=30,
        what="the mismatch to be counted",
    )

    worker.stop()
    spawn(["worker"], {**env, "HOOKYARD_TEST_STRUCT_FIXED": "1"}, name="fixed-worker")
    replay = httpx.post(f"{base}/v1/events/{drifted}/replay", headers=ADMIN, timeout=10)
    assert replay.status_code == 202, replay.text
    wait_for(lambda: delivery(config, drifted)[0] == "succeeded", timeout=30, what="the replay after the fix")
    assert [r.event_id for r in runs(record, "typed:str")] == [drifted]
    assert event_status(config, drifted) == "processed"
