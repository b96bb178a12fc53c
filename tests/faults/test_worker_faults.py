"""Workers killed, crashed, hung and stopped mid-job: every accepted event is stored once and delivered."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rq.registry import FailedJobRegistry

from tests.conftest import Config, ConfigFactory, Process, gxm_body, gxm_headers, rows, wait_for
from tests.plugins.recording import recorded

pytestmark = pytest.mark.faults


def _post(base: str, action: str = "LOCATION:CREATED", **payload: object) -> str:
    response = httpx.post(
        f"{base}/webhooks/gxm", content=gxm_body(action, payload=dict(payload)), headers=gxm_headers(), timeout=10
    )
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def _delivery(config: Config, event_id: str, handler: str) -> tuple[str, int] | None:
    found = rows(
        config, "select status, attempts from deliveries where event_id = :e and handler = :h", e=event_id, h=handler
    )
    return (found[0][0], found[0][1]) if found else None


@pytest.fixture
def plugin_config(make_config: ConfigFactory, tmp_path: Path) -> tuple[Config, dict[str, str], Path]:
    config = make_config(handler_modules=["tests.plugins.recording"])
    record = tmp_path / "record.txt"
    return config, config.env(HOOKYARD_TEST_RECORD=str(record)), record


def test_a_worker_killed_mid_job_has_its_job_finished_by_another(
    plugin_config: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    config, env, record = plugin_config
    base = server_for(config)
    first = spawn(["worker"], env, name="worker-a")
    unblock = tmp_path / "unblock"
    event_id = _post(base, block_on=str(unblock))
    [(_, _, _, victim_pid)] = wait_for(
        lambda: [r for r in recorded(record) if r[0] == "blocking"], timeout=20, what="the handler to start"
    )

    second = spawn(["worker"], env, name="worker-b")
    os.killpg(first.popen.pid, signal.SIGKILL)
    first.popen.wait()
    unblock.touch()

    wait_for(
        lambda: _delivery(config, event_id, "record-all") == ("succeeded", 2),
        timeout=60,
        what="the killed worker's delivery to finish elsewhere",
    )
    assert _delivery(config, event_id, "record-location") is not None
    wait_for(lambda: _delivery(config, event_id, "record-location")[0] == "succeeded", timeout=30)  # type: ignore[index]
    assert rows(config, "select count(*) from events") == [(1,)]
    finished = [r for r in recorded(record) if r[0] == "record-all"]
    assert len(finished) == 1
    assert finished[0][3] != victim_pid
    assert second.popen.poll() is None


def test_a_poison_event_goes_dead_and_others_keep_flowing(
    plugin_config: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[..., str],
) -> None:
    config, env, record = plugin_config
    base = server_for(config)
    spawn(["worker"], env, name="worker")
    poison = _post(base, "BOOKING:CREATED", crash=True)
    healthy = [_post(base, "BOOKING:CREATED", n=n) for n in range(3)]

    wait_for(
        lambda: all(_delivery(config, e, "record-all") == ("succeeded", 1) for e in healthy),
        timeout=40,
        what="healthy events delivered despite the crashing one",
    )
    state = wait_for(
        lambda: (d := _delivery(config, poison, "record-all")) and d[0] == "dead" and d,
        timeout=55,
        what="the poison delivery to go dead",
    )
    assert state == ("dead", 4)  # three crashed attempts, then the fourth claim finds them used up
    crashes = [r for r in recorded(record) if r[0] == "crashing"]
    assert len(crashes) == 3
    [(error, status)] = rows(
        config,
        "select d.last_error, e.status from deliveries d join events e on e.id = d.event_id where e.id = :e",
        e=poison,
    )
    assert "worker died" in error
    assert status == "failed"


def test_a_hanging_handler_is_bounded_and_others_keep_flowing(
    plugin_config: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[..., str],
) -> None:
    config, env, _ = plugin_config
    base = server_for(config)
    spawn(["worker"], env, name="worker")
    stuck = _post(base, "BOOKING:CREATED", hang=True)
    healthy = [_post(base, "BOOKING:CREATED", n=n) for n in range(3)]
    wait_for(
        lambda: all(_delivery(config, e, "record-all") == ("succeeded", 1) for e in healthy),
        timeout=30,
        what="healthy events delivered",
    )
    wait_for(lambda: _delivery(config, stuck, "record-all") == ("dead", 3), timeout=40, what="the hung delivery dead")
    [(error,)] = rows(config, "select last_error from deliveries where event_id = :e", e=stuck)
    assert "time limit" in error


def test_sigterm_lets_the_running_job_finish_then_exits(
    plugin_config: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    config, env, record = plugin_config
    base = server_for(config)
    worker = spawn(["worker"], env, name="worker")
    unblock = tmp_path / "unblock"
    event_id = _post(base, block_on=str(unblock))
    wait_for(lambda: [r for r in recorded(record) if r[0] == "blocking"], timeout=20, what="the handler to start")

    worker.popen.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert worker.popen.poll() is None, "the worker quit with a job in flight"
    unblock.touch()
    started = time.monotonic()
    assert worker.popen.wait(timeout=30) == 0
    assert time.monotonic() - started < 25
    assert _delivery(config, event_id, "record-all") == ("succeeded", 1)
    assert _delivery(config, event_id, "record-location") == ("succeeded", 1)


def test_sigterm_to_the_api_exits_cleanly_and_keeps_what_it_accepted(
    plugin_config: tuple[Config, dict[str, str], Path], spawn: Callable[..., Process]
) -> None:
    config, env, _ = plugin_config
    serve = spawn(["serve"], env, name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_for(lambda: _answers(f"{base}/health/live"), timeout=15, what="serve")
    ids = [_post(base, n=n) for n in range(5)]
    serve.popen.send_signal(signal.SIGTERM)
    assert serve.popen.wait(timeout=25) == 0

    worker = spawn(["worker", "--burst"], env, name="burst")
    assert worker.popen.wait(timeout=60) == 0
    assert {row[0] for row in rows(config, "select id from events")} == set(ids)
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(config.settings.redis.url)
    assert FailedJobRegistry("hookyard", connection=client).count == 0
    client.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
