"""`hookyard dev` (what `make run` runs) as a person at a terminal uses it.

The welcome lines are printed only once `/health/ready` answers, so pasting the
`hookyard send` line at once works. Ctrl-C in a terminal is SIGINT to the
whole foreground process group: the test sends exactly that, and expects the
children stopped in order (workers before their Redis), no traceback, one
goodbye line and exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.embedded_redis import free_port
from tests.conftest import wait_for

pytestmark = pytest.mark.process


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(150)
def test_ready_lines_then_ctrl_c_to_the_process_group_stops_everything_cleanly(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_")}
    log = tmp_path / "dev.log"
    dev = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "dev", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        wait_for(lambda: "Ctrl-C stops everything." in log.read_text(), 90, 0.1, "the welcome lines")
        children = _children(dev.pid)
        assert len(children) == 3, children  # Redis, the API, the worker supervisor
        send = subprocess.run(
            [sys.executable, "-m", "service.cli", "send", "--source", "gxm"],
            cwd=tmp_path,
            env={**env, "HOOKYARD_CONFIG": "var/dev.toml"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert send.stdout.startswith("202 "), send.stdout + send.stderr  # pasted at once: no "connection refused"
        time.sleep(1)  # let the worker pick the event up, so Ctrl-C lands on a busy system

        os.killpg(dev.pid, signal.SIGINT)
        assert dev.wait(timeout=90) == 0
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
    output = log.read_text()
    assert "Traceback" not in output, output
    assert output.strip().splitlines()[-1] == "hookyard dev: stopped workers, API, Redis. Bye.", output
    assert output.count("hookyard dev:") == 1, output
    wait_for(lambda: not any(_alive(pid) for pid in children), 10, 0.1, "every child to be gone")
    assert "make: ***" not in output
