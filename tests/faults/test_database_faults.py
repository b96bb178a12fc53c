"""The database goes away while workers run: jobs wait, ingest keeps accepting, nothing is failed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from rq.registry import FailedJobRegistry
from sqlalchemy.engine import make_url

from tests.conftest import ConfigFactory, Process, gxm_body, gxm_headers, rows, wait_for
from tests.faults.conftest import TcpProxy

pytestmark = pytest.mark.faults


@pytest.fixture
def proxied_postgres(postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.close()


def test_database_outage_is_waited_out(
    make_config: ConfigFactory,
    proxied_postgres: tuple[str, TcpProxy],
    spawn: Callable[..., Process],
    server_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    database_url, proxy = proxied_postgres
    config = make_config(database={"url": database_url}, handler_modules=["tests.plugins.recording"])
    env = config.env(HOOKYARD_TEST_RECORD=str(tmp_path / "record.txt"))
    base = server_for(config)
    spawn(["worker"], env, name="worker")
    warm = httpx.post(f"{base}/webhooks/gxm", content=gxm_body(payload={"n": -1}), headers=gxm_headers(), timeout=10)
    assert warm.status_code == 202
    wait_for(lambda: rows(config, "select count(*) from events") == [(1,)], timeout=20, what="a first stored event")

    proxy.cut()
    ids = []
    for n in range(5):
        response = httpx.post(
            f"{base}/webhooks/gxm", content=gxm_body(payload={"n": n}), headers=gxm_headers(), timeout=10
        )
        assert response.status_code == 202, "ingest must not depend on the database"
        ids.append(response.json()["data"]["id"])
    ready = httpx.get(f"{base}/health/ready", timeout=15)
    assert ready.status_code == 200
    assert ready.json()["data"]["status"] == "degraded"
    assert ready.json()["data"]["database"]["status"] == "down"
    time.sleep(3)  # the worker meets the outage and backs off

    proxy.start()
    wait_for(
        lambda: rows(config, "select count(*) from events where status = 'processed'") == [(6,)],
        timeout=45,
        what="the events queued during the outage to be processed",
    )
    client = redis.Redis.from_url(config.settings.redis.url)
    assert FailedJobRegistry("hookyard", connection=client).count == 0
    client.close()
    assert httpx.get(f"{base}/health/ready", timeout=15).json()["data"]["status"] == "ok"
