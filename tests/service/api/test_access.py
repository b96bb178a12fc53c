"""Keys, roles and per-key rate limits of the `/v1` API, with real Redis."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from litestar.testing import TestClient

from schemas.settings import load_settings
from service.app import create_app
from service.embedded_redis import free_port
from tests.conftest import ADMIN_KEY, READ_KEY, wait_http
from tests.service.api.conftest import ADMIN, READ


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}, {"Authorization": f"Basic {ADMIN_KEY}"}],
)
def test_missing_or_unknown_key_is_401(client, headers):
    response = client.get("/v1/events", headers=headers)
    assert response.status_code == 401
    assert response.json()["meta"]["code"] == "ERR:MSG:UNAUTHORIZED"
    assert ADMIN_KEY not in response.text


@pytest.mark.parametrize("path", ["/v1/events", "/v1/stats", "/v1/handlers"])
def test_bearer_and_x_api_key_both_work(client, path):
    assert client.get(path, headers={"Authorization": f"Bearer {READ_KEY}"}).status_code == 200
    assert client.get(path, headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_read_key_on_admin_call_is_403(client, insert_events):
    [event_id] = insert_events(1)
    response = client.post(f"/v1/events/{event_id}/replay", headers=READ)
    assert response.status_code == 403
    assert response.json()["meta"]["code"] == "ERR:MSG:FORBIDDEN"


def test_key_sha256_and_env_reference(make_config, monkeypatch):
    monkeypatch.setenv("DASH_KEY", "from-the-environment")
    config = make_config(
        api_keys=[
            {"name": "hashed", "key_sha256": hashlib.sha256(b"hashed-key").hexdigest(), "role": "read"},
            {"name": "env", "key": "env:DASH_KEY", "role": "read"},
        ]
    )
    config.settings = load_settings({"HOOKYARD_CONFIG": str(config.path), "DASH_KEY": "from-the-environment"})
    with TestClient(create_app(config.settings), base_url="http://127.0.0.1") as client:
        assert client.get("/v1/handlers", headers={"X-API-Key": "hashed-key"}).status_code == 200
        assert client.get("/v1/handlers", headers={"X-API-Key": "from-the-environment"}).status_code == 200
        assert client.get("/v1/handlers", headers={"X-API-Key": "env:DASH_KEY"}).status_code == 401


def test_rate_limit_429_shape_and_retry_after(make_config):
    config = make_config(api_keys=[{"name": "slow", "key": "slow-key", "role": "read", "rate_per_minute": 3}])
    with TestClient(create_app(config.settings), base_url="http://127.0.0.1") as client:
        headers = {"X-API-Key": "slow-key"}
        codes = [client.get("/v1/handlers", headers=headers).status_code for _ in range(3)]
        limited = client.get("/v1/handlers", headers=headers)
    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    body = limited.json()
    assert body["meta"]["code"] == "ERR:MSG:RATELIMITTED"
    assert body["data"] == {"status": 429, "detail": "too many requests"}
    assert body["warnings"] == {"limits": {"requests_per_minute": 3}, "current": {"requests": 4}}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-Request-ID"]


def test_rate_limit_is_shared_between_app_instances(make_config):
    """Two replicas (two apps) count against one number in Redis."""
    config = make_config(api_keys=[{"name": "shared", "key": "shared-key", "role": "read", "rate_per_minute": 2}])
    headers = {"X-API-Key": "shared-key"}
    with (
        TestClient(create_app(config.settings), base_url="http://127.0.0.1") as one,
        TestClient(create_app(config.settings), base_url="http://127.0.0.1") as two,
    ):
        assert one.get("/v1/handlers", headers=headers).status_code == 200
        assert two.get("/v1/handlers", headers=headers).status_code == 200
        assert one.get("/v1/handlers", headers=headers).status_code == 429


def test_redis_down_fails_open_for_reads(config, spawn, insert_events):
    """A real `hookyard serve` whose Redis is gone: reads work, the log says the limiter is open."""
    insert_events(2)
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    process = spawn(["serve"], config.env(HOOKYARD_REDIS_URL=dead_redis), name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_http(f"{base}/health/live")
    responses = [httpx.get(f"{base}/v1/events", headers=ADMIN, timeout=10) for _ in range(3)]
    stats = httpx.get(f"{base}/v1/stats", headers=ADMIN, timeout=10)
    process.stop()
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len(responses[0].json()["data"]) == 2
    assert stats.status_code == 200
    assert stats.json()["warnings"] == {"queues": "unavailable"}
    assert stats.json()["data"]["events"]["total"] == 2
    assert "rate_limit_unavailable" in process.output()
