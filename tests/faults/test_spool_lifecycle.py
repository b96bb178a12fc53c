"""The spool outlives its process: SIGTERM drains it, a restart keeps its order, `/metrics` counts it."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import msgspec
import pytest
from rq import Queue

from schemas.wire import QueuedEvent
from tests.conftest import Config, ConfigFactory, Process, gxm_body, gxm_headers, wait_for, wait_http
from tests.faults.conftest import KillableRedis
from workers.shared.serializer import JSONSerializer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


def _post(base: str, n: int) -> httpx.Response:
    body = gxm_body(payload={"n": n}, sent_at=1700000000)
    return httpx.post(f"{base}/webhooks/gxm", content=body, headers=gxm_headers(), timeout=15)


def _queued_ids(server: KillableRedis) -> list[str]:
    client = server.client()
    try:
        queue = Queue("hookyard", connection=client, serializer=JSONSerializer)
        return [msgspec.convert(e, QueuedEvent).id for job in queue.get_jobs() for e in job.args[0]]
    finally:
        client.close()


def _spooled(config: Config, table: str = "spooled_events") -> int:
    try:
        with sqlite3.connect(config.settings.server.spool_path) as conn:
            return int(conn.execute(f"select count(*) from {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def _serve(spawn: Callable[..., Process], config: Config) -> tuple[Process, str]:
    process = spawn(["serve"], config.env(), name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    try:
        wait_http(f"{base}/health/live")
    except AssertionError:
        raise AssertionError(process.output()) from None
    return process, base


def _spool_some(base: str, numbers: range) -> list[str]:
    ids = []
    for n in numbers:
        response = _post(base, n)
        assert response.status_code == 202, response.text
        assert response.json()["warnings"] == {"queue": "spooled"}
        ids.append(response.json()["data"]["id"])
    return ids


def test_sigterm_drains_the_spool_into_redis_before_exit(
    make_config: ConfigFactory, killable_redis: KillableRedis, spawn: Callable[..., Process]
) -> None:
    """A scale-in during a Redis outage: the pod gets SIGTERM, Redis comes back within the grace period."""
    config = make_config(redis={"url": killable_redis.url})
    process, base = _serve(spawn, config)
    killable_redis.kill()
    ids = _spool_some(base, range(5))

    process.popen.send_signal(signal.SIGTERM)
    time.sleep(2)
    assert process.popen.poll() is None, "serve exited with acknowledged events still in its spool"
    killable_redis.start()
    assert process.popen.wait(timeout=30) == 0, process.output()
    assert _spooled(config) == 0
    assert _queued_ids(killable_redis) == ids


def test_a_restart_with_a_spool_puts_new_events_behind_the_spooled_ones(
    make_config: ConfigFactory, killable_redis: KillableRedis, spawn: Callable[..., Process]
) -> None:
    """A pod killed mid-outage restarts on its volume: nothing lost, and the order of acceptance kept."""
    config = make_config(redis={"url": killable_redis.url})
    process, base = _serve(spawn, config)
    killable_redis.kill()
    spooled = _spool_some(base, range(3))
    process.stop(signal.SIGKILL)
    assert _spooled(config) == 3

    killable_redis.start()
    _, base = _serve(spawn, config)
    fresh = [_post(base, n).json()["data"]["id"] for n in range(3, 6)]  # before the first drain, a second away
    wait_for(lambda: _spooled(config) == 0, timeout=30, what="the spool drained")
    wait_for(lambda: len(_queued_ids(killable_redis)) == 6, timeout=15, what="six queued events")
    assert _queued_ids(killable_redis) == spooled + fresh


def test_spool_gauges_count_waiting_and_quarantined_rows_and_redrive_requeues_them(
    make_config: ConfigFactory, killable_redis: KillableRedis, spawn: Callable[..., Process]
) -> None:
    config = make_config(redis={"url": killable_redis.url})
    _, base = _serve(spawn, config)
    killable_redis.kill()
    ids = _spool_some(base, range(3))

    def gauge(name: str) -> float | None:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    wait_for(lambda: gauge("hookyard_spool_events") == 3.0, timeout=20, what="hookyard_spool_events 3")
    assert gauge("hookyard_spool_quarantined") == 0.0

    # A row this version cannot read (as if a newer one wrote it) is set aside, acknowledged though it was.
    with sqlite3.connect(config.settings.server.spool_path) as conn:
        conn.execute('update spooled_events set event = \'{"not": "an event"}\' where event_id = ?', (ids[1],))
        saved = conn.execute("select seq from spooled_events where event_id = ?", (ids[1],)).fetchone()[0]
    killable_redis.start()
    wait_for(lambda: _spooled(config) == 0, timeout=30, what="the spool drained")
    wait_for(lambda: gauge("hookyard_spool_quarantined") == 1.0, timeout=20, what="hookyard_spool_quarantined 1")
    assert _queued_ids(killable_redis) == [ids[0], ids[2]]

    def redrive() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service.cli", "spool", "redrive"],
            env=config.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = redrive()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 row(s) still unreadable" in result.stdout + result.stderr

    # Fixed (here: written back as the event it was); redrive puts it back in line and serve drains it.
    with sqlite3.connect(config.settings.server.spool_path) as conn:
        event = QueuedEvent(id=ids[1], source="gxm", fingerprint="fixed", received_at_us=1, request_id="r", body="{}")
        conn.execute("update spool_quarantine set event = ? where seq = ?", (msgspec.json.encode(event), saved))
    result = redrive()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 row(s) back in the spool" in result.stdout
    wait_for(lambda: _spooled(config) == 0, timeout=30, what="the redriven row drained")
    assert _queued_ids(killable_redis) == [ids[0], ids[2], ids[1]]
    assert _spooled(config, "spool_quarantine") == 0
