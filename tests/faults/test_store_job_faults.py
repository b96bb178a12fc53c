"""A store job that fails for good gives its fingerprints back: a re-delivery is stored, never a 404 id."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import msgspec
import pytest
import redis
from rq.registry import FailedJobRegistry

from schemas.wire import QueuedEvent
from tests.conftest import ADMIN_KEY, Config, ConfigFactory, gxm_body, gxm_headers, rows
from workers.registry import Registry

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

BODY = gxm_body(payload={"order": 1}, sent_at=1700000000)


def _post(base: str) -> httpx.Response:
    return httpx.post(f"{base}/webhooks/gxm", content=BODY, headers=gxm_headers(), timeout=15)


def _poison_the_only_job(config: Config) -> None:
    """Make the waiting store job fail for good: no retries left, and an event body the store cannot read."""
    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        [job_id] = client.lrange("rq:queue:hookyard", 0, -1)
        key = f"rq:job:{job_id.decode()}"
        data = msgspec.json.decode(client.hget(key, "data") or b"")
        # A body that is not a GuestXM envelope: storing it raises, as a bug would.
        events = [msgspec.convert(item, QueuedEvent) for item in data[2][0]]
        data[2][0] = [msgspec.to_builtins(msgspec.structs.replace(event, body="{}")) for event in events]
        client.hset(key, mapping={"data": msgspec.json.encode(data), "retries_left": 0})
    finally:
        client.close()


def _failed_jobs(config: Config) -> int:
    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        return FailedJobRegistry("hookyard", connection=client).count
    finally:
        client.close()


def test_a_redelivery_after_its_store_job_failed_for_good_is_stored_not_a_duplicate_of_a_404(
    make_config: ConfigFactory, server_for: Callable[..., str], worker_for: Callable[..., object]
) -> None:
    config = make_config()
    base = server_for(config)
    first = _post(base)
    assert first.status_code == 202
    _poison_the_only_job(config)
    worker = worker_for(config, Registry())
    worker.drain()  # type: ignore[attr-defined]
    assert _failed_jobs(config) == 1
    admin = {"X-API-Key": ADMIN_KEY}
    assert httpx.get(f"{base}/v1/events/{first.json()['data']['id']}", headers=admin, timeout=10).status_code == 404

    again = _post(base)
    assert again.status_code == 202, again.text
    assert again.json()["data"]["duplicate"] is False
    worker.drain()  # type: ignore[attr-defined]
    second_id = again.json()["data"]["id"]
    assert httpx.get(f"{base}/v1/events/{second_id}", headers=admin, timeout=10).status_code == 200

    third = _post(base)
    assert third.status_code == 200
    assert third.json()["data"] == {"id": second_id, "status": "queued", "duplicate": True}
    assert rows(config, "select id from events") == [(second_id,)]
