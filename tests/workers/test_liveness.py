"""The worker liveness probe's verdict from heartbeat files (the real-process test: tests/faults/)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from schemas.settings import WorkerSettings
from workers.liveness import beat_file, clear, main, max_age_seconds, stale, touch


def test_every_slot_must_have_beaten_recently(tmp_path: Path) -> None:
    settings = WorkerSettings(heartbeat_path=str(tmp_path / "beats" / "worker"))
    clear(settings)
    problems, count = stale(settings, 10)
    assert count == 0
    assert "no worker heartbeat file" in problems[0]

    for slot in (0, 1):
        touch(beat_file(settings, slot))
    assert stale(settings, 10) == ([], 2)

    old = time.time() - 60
    os.utime(beat_file(settings, 1), (old, old))
    problems, count = stale(settings, 10)
    assert count == 2
    assert len(problems) == 1
    assert "worker.1 last touched 60 s ago" in problems[0]

    clear(settings)  # a new supervisor forgets the old run's slots
    assert stale(settings, 10)[1] == 0


def test_default_limit_covers_an_idle_dequeue_and_a_maintenance_pass() -> None:
    settings = WorkerSettings(heartbeat_seconds=10, maintenance_seconds=15)
    assert max_age_seconds(settings) >= 2 * (15 + 10)


def test_probe_command_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(tmp_path)  # no ./hookyard.toml
    path = tmp_path / "worker-heartbeat"
    monkeypatch.setenv("HOOKYARD_WORKER_HEARTBEAT_PATH", str(path))
    monkeypatch.setenv("HOOKYARD_REDIS_URL", "redis://127.0.0.1:1/0")  # never asked
    assert main([]) == 1
    assert "no worker heartbeat file" in capsys.readouterr().err
    touch(Path(f"{path}.0"))
    assert main([]) == 0
    assert "1 worker process(es) beating" in capsys.readouterr().out
    old = time.time() - 30
    os.utime(f"{path}.0", (old, old))
    assert main(["--max-age", "5"]) == 1
    assert "limit 5 s" in capsys.readouterr().err

    monkeypatch.setenv("HOOKYARD_REDIS_URL", "ftp://nowhere")
    assert main([]) == 2
    assert "redis.url" in capsys.readouterr().err
