"""A `redis+sentinel://` URL works everywhere: ingest, the worker, `/v1/stats`, replay and `hookyard replay`.

Against a real Sentinel (`redis-server --sentinel`, the same binary) that
watches a real master, so every client is built by `workers.shared.connections`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from litestar.testing import TestClient

from service.app import create_app
from service.embedded_redis import EmbeddedRedis, free_port, redis_server_binary
from tests.conftest import ADMIN_KEY, ConfigFactory, Worker, gxm_body, gxm_headers, wait_for
from workers.context import WorkerContext, set_context
from workers.registry import Registry

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


class Sentinel:
    def __init__(self, directory: Path, master_port: int) -> None:
        self.port = free_port()
        config = directory / "sentinel.conf"
        directory.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\nsentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
        )
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            wait_for(lambda: _master_known(client), 10, what="the sentinel to know its master")
        finally:
            client.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _master_known(client: redis.Redis) -> bool:
    try:
        return client.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster") is not None
    except redis.RedisError:
        return False


@pytest.fixture
def master(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "master", persistent=False).start()
    yield server
    server.stop()


@pytest.fixture
def sentinel(tmp_path: Path, master: EmbeddedRedis) -> Iterator[Sentinel]:
    watcher = Sentinel(tmp_path / "sentinel", master.port)
    yield watcher
    watcher.stop()


def test_a_sentinel_url_serves_stats_replay_and_the_cli(
    make_config: ConfigFactory, master: EmbeddedRedis, sentinel: Sentinel
) -> None:
    config = make_config(redis={"url": f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0"})
    registry = Registry()
    runs: list[str] = []
    registry.handler("LOCATION:*", name="counter")(lambda event: runs.append(event.id))
    context = WorkerContext.build(config.settings, registry=registry, load_plugins=False)
    direct = redis.Redis(port=master.port)
    app = create_app(config.settings)
    try:
        with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:  # type: ignore[arg-type]
            accepted = client.post("/webhooks/gxm", content=gxm_body(), headers=gxm_headers())
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["warnings"] == {}  # queued in Redis through the sentinel, not spooled
            event_id = accepted.json()["data"]["id"]
            Worker(context).drain()
            assert runs == [event_id]

            stats = client.get("/v1/stats", headers=ADMIN)
            assert stats.status_code == 200, stats.text
            assert stats.json()["warnings"] == {}
            assert stats.json()["data"]["queues"]["hookyard"] == 0

            replayed = client.post(f"/v1/events/{event_id}/replay", headers=ADMIN)
            assert replayed.status_code == 202, replayed.text
            assert replayed.json()["warnings"] == {}  # queued, not "deferred"
            assert direct.llen("rq:queue:hookyard") == 1
            Worker(context).drain()
            assert runs == [event_id, event_id]

        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "replay", "--event", event_id],
            env=config.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert direct.llen("rq:queue:hookyard") == 1
        Worker(context).drain()
        assert runs == [event_id, event_id, event_id]
    finally:
        set_context(None)
        context.close()
        direct.close()
