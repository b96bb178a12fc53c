"""Worker liveness probe against real RQ worker registrations."""

from __future__ import annotations

import socket
import uuid

from rq import SimpleWorker

from workers.liveness import live_workers, main


def _worker(client, hostname_suffix: str = "") -> SimpleWorker:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    worker = SimpleWorker([queue], name=f"w-{uuid.uuid4().hex}", connection=client)
    if hostname_suffix:
        worker.hostname = socket.gethostname() + hostname_suffix
    worker.register_birth()
    return worker


def test_a_registered_worker_on_this_host_is_live_until_it_dies(ops_redis):
    worker = _worker(ops_redis)
    try:
        assert worker.name in live_workers(ops_redis, socket.gethostname())
    finally:
        worker.register_death()
    assert worker.name not in live_workers(ops_redis, socket.gethostname())


def test_a_worker_on_another_host_does_not_make_this_one_live(ops_redis):
    worker = _worker(ops_redis, hostname_suffix="-elsewhere")
    try:
        assert worker.name not in live_workers(ops_redis, socket.gethostname())
        assert worker.name in live_workers(ops_redis, worker.hostname)
    finally:
        worker.register_death()


def test_probe_command_exit_codes(ops_redis, ops_redis_url, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no ./hookyard.toml
    monkeypatch.setenv("HOOKYARD_REDIS_URL", ops_redis_url)
    worker = _worker(ops_redis)
    try:
        assert main() == 0
        assert "live on" in capsys.readouterr().out
    finally:
        worker.register_death()

    monkeypatch.setenv("HOOKYARD_REDIS_URL", "ftp://nowhere")
    assert main() == 2
    assert "redis.url" in capsys.readouterr().err
