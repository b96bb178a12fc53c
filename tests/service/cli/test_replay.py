"""`hookyard replay` as a real process, then a real worker drain re-runs what it queued."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.service.api.conftest import READ, ingest
from workers.event import PermanentError


def hookyard(config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env=config.env(), capture_output=True, text=True, timeout=60
    )


def test_replay_dead_deliveries_by_filter(config, client, worker, registry):
    healthy = {"ok": False}

    def crm(event):
        if not healthy["ok"]:
            raise PermanentError("crm is down")

    registry.handler("LOCATION:*", "USER:*", name="crm")(crm)
    registry.handler("LOCATION:*", name="audit")(lambda event: None)
    located = [ingest(client, "LOCATION:CREATED"), ingest(client, "LOCATION:DELETED")]
    user = ingest(client, "USER:CREATED")
    worker.drain()
    healthy["ok"] = True

    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d")
    dry = hookyard(config, "replay", "--action", "LOCATION:*", "--status", "dead", "--since", since, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 2 deliveries on 2 events" in dry.stdout

    done = hookyard(config, "replay", "--action", "LOCATION:*", "--status", "dead", "--since", since)
    assert done.returncode == 0, done.stderr
    assert "replayed 2 deliveries on 2 events" in done.stdout
    assert "hookyard replay: 2/2 deliveries (100%)" in done.stderr
    replay_id = done.stdout.split()[1].rstrip(":")
    recorded = client.get(f"/v1/replays/{replay_id}", headers=READ).json()["data"]
    assert (recorded["status"], recorded["events"], recorded["deliveries"], recorded["queued"]) == ("done", 2, 2, 2)
    worker.drain()

    statuses = {e["id"]: e["status"] for e in client.get("/v1/events", headers=READ).json()["data"]}
    assert [statuses[event_id] for event_id in located] == ["processed", "processed"]
    assert statuses[user] == "failed"  # outside the filter

    one = hookyard(config, "replay", "--event", user, "--handler", "crm")
    assert one.returncode == 0, one.stderr
    assert f"{user}: crm (queued; attempts 1, up to 6)" in one.stdout
    worker.drain()
    assert client.get(f"/v1/events/{user}", headers=READ).json()["data"]["status"] == "processed"


@pytest.mark.parametrize(
    "args",
    [
        ["replay"],
        ["replay", "--action", "location"],
        ["replay", "--event", "nope"],
        ["replay", "--status", "bogus"],
        ["replay", "--since", "yesterday"],
        ["replay", "--event", "01a20856-3016-738b-a446-277ac917831e", "--action", "A:B"],
    ],
)
def test_bad_arguments_exit_2_without_traceback(config, args):
    result = hookyard(config, *args)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr


def test_unknown_handler_for_one_event_exits_2(config, client, worker, registry):
    registry.handler("LOCATION:*", name="crm")(lambda event: None)
    event_id = ingest(client)
    worker.drain()
    result = hookyard(config, "replay", "--event", event_id, "--handler", "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr
