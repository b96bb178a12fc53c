"""One real `hookyard serve` per test module, for the many checks that need no fresh process.

Starting a server costs about a second; the ingest check table has dozens of
rows. `ingest` shares one process across a module but gives every test an
empty Redis database, and fails the test if the server logged a traceback or
died while it ran.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis
from rq import Queue

from schemas.settings import load_settings
from service.embedded_redis import free_port
from tests.conftest import SECRET, Config, Process, make_url_db, migrate, wait_http, write_config
from workers.shared.serializer import JSONSerializer

OTHER_SECRET = "rotated-secret"
QUEUE_KEY = "rq:queue:hookyard"
ALLOWED_NET = "203.0.113.0/24"
LIMITED_RATE = 5
"""`rate_per_minute` of the `limited` source in the shared server."""

SHARED_SOURCES: list[dict[str, Any]] = [
    {"name": "gxm", "scheme": "gxm-sha256", "secrets": [SECRET, OTHER_SECRET]},
    {"name": "locked", "secrets": [SECRET], "allow_ips": [ALLOWED_NET]},
    {"name": "loopback2", "secrets": [SECRET], "allow_ips": ["127.0.0.2/32"]},
    {"name": "fresh", "secrets": [SECRET], "max_age_seconds": 300},
    {"name": "limited", "secrets": [SECRET], "rate_per_minute": LIMITED_RATE},
]


@dataclass
class IngestServer:
    """A running server plus the Redis database it queues into."""

    base: str
    process: Process
    redis: redis.Redis
    config: Config
    _log_offset: int = field(default=0)

    def url(self, source: str = "gxm") -> str:
        return f"{self.base}/webhooks/{source}"

    def queued(self) -> int:
        """Events waiting on the RQ queue: what a worker would pick up (a store job may carry several)."""
        queue = Queue("hookyard", connection=self.redis, serializer=JSONSerializer)
        return sum(len(job.args[0]) for job in queue.get_jobs())

    def fingerprints(self) -> list[bytes]:
        return sorted(self.redis.scan_iter("hookyard:fp:*"))

    def assert_nothing_queued(self) -> None:
        assert self.queued() == 0
        assert self.fingerprints() == []

    def new_output(self) -> str:
        text = self.process.output()
        return text[self._log_offset :]


def start_server(
    tmp: Path, redis_url: str, *, sources: list[dict[str, Any]], server: dict[str, Any] | None = None
) -> tuple[Process, Config]:
    database = f"sqlite:///{tmp / 'hookyard.db'}"
    migrate(database)
    tables: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": free_port(), "spool_path": str(tmp / "spool.db"), **(server or {})},
        "redis": {"url": redis_url},
        "database": {"url": database},
        "log": {"format": "json", "level": "info"},
    }
    path = write_config(tmp / "hookyard.toml", tables, {"sources": sources})
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_")}
    env["HOOKYARD_CONFIG"] = str(path)
    config = Config(path=path, settings=load_settings(env))
    log = tmp / "serve.log"
    popen = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"],
        env=config.env(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process = Process(popen, log)
    try:
        wait_http(f"http://127.0.0.1:{config.settings.server.port}/health/live")
    except AssertionError:
        process.stop(signal.SIGKILL)
        raise AssertionError(process.output()) from None
    return process, config


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[IngestServer]:
    """The module's server: trusts 127.0.0.1 as a proxy, body timeout 1 s, the sources above."""
    database = 3 if not os.environ.get("HOOKYARD_TEST_REDIS_URL") else 10
    redis_url = make_url_db(redis_server, database)
    tmp = tmp_path_factory.mktemp("ingest")
    process, config = start_server(
        tmp,
        redis_url,
        sources=SHARED_SOURCES,
        server={"trusted_proxies": ["127.0.0.1/32"], "body_timeout_seconds": 1.0},
    )
    client = redis.Redis.from_url(redis_url)
    yield IngestServer(
        base=f"http://127.0.0.1:{config.settings.server.port}", process=process, redis=client, config=config
    )
    process.stop()
    client.flushdb()
    client.close()


@pytest.fixture
def ingest(shared_server: IngestServer) -> Iterator[IngestServer]:
    """The shared server with an empty Redis; the test fails if the server crashed or logged a traceback."""
    shared_server.redis.flushdb()
    shared_server._log_offset = len(shared_server.process.output())
    yield shared_server
    output = shared_server.new_output()
    assert shared_server.process.popen.poll() is None, output
    assert "Traceback" not in output, output
    assert '"level":"error"' not in output.replace(" ", ""), output


def assert_error(response: httpx.Response, status: int, code: str, request_id: str | None = None) -> dict[str, Any]:
    """What every rejected caller sees: the status, the envelope with `meta.code`, a request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = msgspec.json.decode(response.content)
    assert set(body) == {"data", "meta", "warnings"}, body
    assert set(body["data"]) == {"status", "detail"}, body
    assert body["data"]["status"] == status
    assert isinstance(body["data"]["detail"], str)
    assert body["data"]["detail"]
    assert "Traceback" not in body["data"]["detail"]
    assert body["meta"]["code"] == code, body
    if request_id is not None:
        assert response.headers["x-request-id"] == request_id
    else:
        assert response.headers["x-request-id"]
    return body
