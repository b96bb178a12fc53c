"""Real `hookyard serve` and `hookyard worker` processes, talking over HTTP, Redis and SQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import Config, ConfigFactory, Process, gxm_body, gxm_headers, rows, wait_for
from tests.plugins.recording import recorded


def test_events_posted_to_a_real_server_are_stored_and_handled_by_a_real_worker(
    make_config: ConfigFactory, spawn: Callable[..., Process], server_for: Callable[[Config], str], tmp_path: Path
) -> None:
    config = make_config(handler_modules=["tests.plugins.recording"])
    record = tmp_path / "record.txt"
    env = config.env(HOOKYARD_TEST_RECORD=str(record))
    base = server_for(config)
    spawn(["worker"], env, name="worker")

    ids = []
    for n in range(20):
        response = httpx.post(
            f"{base}/webhooks/gxm", content=gxm_body(payload={"n": n}), headers=gxm_headers(), timeout=5
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["data"]["id"])

    def all_processed() -> bool:
        found = rows(config, "select count(*) from events where status = 'processed'")
        return found[0][0] == 20

    wait_for(all_processed, timeout=30, what="20 processed events")
    runs = recorded(record)
    assert sorted(event_id for name, event_id, _, _ in runs if name == "record-location") == sorted(ids)
    assert sorted(event_id for name, event_id, _, _ in runs if name == "record-all") == sorted(ids)


def test_handlers_lists_modules_and_entry_points(make_config: ConfigFactory, tmp_path: Path) -> None:
    config = make_config(handler_modules=["tests.plugins.recording"])
    site = tmp_path / "site"
    (site / "acme_hooks-1.0.dist-info").mkdir(parents=True)
    (site / "acme_hooks-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-hooks\nVersion: 1.0\n"
    )
    (site / "acme_hooks-1.0.dist-info" / "entry_points.txt").write_text("[hookyard.handlers]\nacme = acme_hooks\n")
    (site / "acme_hooks.py").write_text(
        "from workers import handler\n\n"
        "@handler('BOOKING:*', '*:DELETED', name='acme-sync', max_attempts=7)\n"
        "def sync(event):\n    pass\n"
    )
    env = config.env(PYTHONPATH=f"{site}:{Path.cwd()}")
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "handlers", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    listed = {item["name"]: item for item in json.loads(result.stdout)}
    assert listed["acme-sync"]["patterns"] == ["BOOKING:*", "*:DELETED"]
    assert listed["acme-sync"]["max_attempts"] == 7
    assert listed["record-location"]["patterns"] == ["LOCATION:*"]
    assert listed["record-all"]["timeout_seconds"] == 3

    text_result = subprocess.run(
        [sys.executable, "-m", "service.cli", "handlers"], env=env, capture_output=True, text=True, timeout=60
    )
    assert any(line.split()[:3] == ["acme-sync", "BOOKING:*,", "*:DELETED"] for line in text_result.stdout.splitlines())


def test_a_handler_module_that_fails_to_import_is_named(make_config: ConfigFactory) -> None:
    config = make_config(handler_modules=["no_such_module_here"])
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "handlers"], env=config.env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no_such_module_here" in result.stderr
    assert "Traceback" not in result.stderr
