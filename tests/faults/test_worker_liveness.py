"""The worker liveness probe reads local heartbeat files: a Redis outage does not fail it, a hung worker does.

Before, the probe asked Redis for the worker's registration, so Kubernetes restarted every worker
90 s into a Redis outage (which cures nothing: workers wait Redis out by themselves).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.conftest import Config, ConfigFactory, Process, wait_for
from tests.faults.conftest import KillableRedis

pytestmark = pytest.mark.timeout(120)

MAX_AGE = "8"
"""The probe's limit here: the test config beats every second or two, so this leaves room for a loaded host."""


def probe(config: Config) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.liveness", "--max-age", MAX_AGE],
        env=config.env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_liveness_passes_through_a_redis_outage_and_fails_when_the_worker_is_stopped(
    make_config: ConfigFactory, killable_redis: KillableRedis, spawn: Callable[..., Process]
) -> None:
    config = make_config(redis={"url": killable_redis.url})
    worker = spawn(["worker"], config.env(), name="worker")
    client = killable_redis.client()
    wait_for(lambda: client.scard("rq:workers"), timeout=30, interval=0.2, what="the worker to register")
    client.close()
    assert probe(config).returncode == 0

    killable_redis.kill()
    deadline = time.monotonic() + 3 * float(MAX_AGE)  # well past the probe's limit
    while time.monotonic() < deadline:
        result = probe(config)
        assert result.returncode == 0, (result.stderr, worker.output())
        assert worker.popen.poll() is None, worker.output()
        time.sleep(1)

    os.killpg(worker.popen.pid, signal.SIGSTOP)  # hung: supervisor and worker alike
    try:
        failed = wait_for(
            lambda: (result := probe(config)).returncode == 1 and result,
            timeout=4 * float(MAX_AGE),
            interval=1,
            what="the probe to fail",
        )
        assert "last touched" in failed.stderr
    finally:
        os.killpg(worker.popen.pid, signal.SIGCONT)
