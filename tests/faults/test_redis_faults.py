"""Redis crashes, pauses and restarts while vendors POST: nothing acknowledged is lost."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from rq import Queue
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from schemas.signatures import scheme_for
from schemas.tables import DeliveryRow
from schemas.wire import QueuedEvent
from service.limiter import BACKOFF_SECONDS
from tests.conftest import Config, ConfigFactory, enqueue_events, gxm_body, gxm_headers, rows, wait_for
from tests.faults.conftest import KillableRedis
from workers.registry import Registry
from workers.shared.serializer import JSONSerializer

pytestmark = pytest.mark.faults


def _post(base: str, n: int, **payload: object) -> httpx.Response:
    return httpx.post(
        f"{base}/webhooks/gxm",
        content=gxm_body(payload={"n": n, **payload}, sent_at=1700000000),
        headers=gxm_headers(),
        timeout=15,
    )


def test_redis_down_spools_then_drains_in_order_without_duplicates(
    make_config: ConfigFactory,
    killable_redis: KillableRedis,
    server_for: Callable[..., str],
    worker_for: Callable[..., object],
) -> None:
    config = make_config(redis={"url": killable_redis.url})
    base = server_for(config)
    first = _post(base, 0)
    assert first.status_code == 202
    assert first.json()["warnings"] == {}
    killable_redis.kill()  # appendfsync always: the 202 above is on disk already
    spooled = []
    for n in range(1, 11):
        started = time.monotonic()
        response = _post(base, n)
        assert time.monotonic() - started < 5, "a request waited on a dead Redis"
        assert response.status_code == 202, response.text
        assert response.json()["warnings"] == {"queue": "spooled"}
        spooled.append(response.json()["data"]["id"])

    ready = httpx.get(f"{base}/health/ready", timeout=15)
    assert ready.status_code == 200
    assert ready.json()["data"]["status"] == "degraded"
    assert ready.json()["data"]["redis"]["status"] == "down"

    killable_redis.start()
    client = killable_redis.client()
    wait_for(lambda: client.llen("rq:queue:hookyard") >= 1 and not _spool_rows(config), timeout=15, what="drain")

    registry = Registry()
    seen: list[str] = []
    registry.handler("*", name="collect")(lambda event: seen.append(event.id))
    worker = worker_for(config, registry)
    worker.drain()  # type: ignore[attr-defined]

    stored = [row[0] for row in rows(config, "select id from events order by seq")]
    assert stored == [first.json()["data"]["id"], *spooled]
    assert sorted(seen) == sorted(stored)

    again = _post(base, 5)
    assert again.status_code == 200
    assert again.json()["data"] == {"id": spooled[4], "status": "queued", "duplicate": True}


def _spool_rows(config: Config) -> int:
    import sqlite3  # noqa: PLC0415

    path = config.settings.server.spool_path
    try:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("select count(*) from spooled_events").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_paused_redis_never_hangs_a_request(
    make_config: ConfigFactory, killable_redis: KillableRedis, server_for: Callable[..., str]
) -> None:
    config = make_config(redis={"url": killable_redis.url, "socket_timeout_seconds": 1.0})
    base = server_for(config)
    assert _post(base, 0).status_code == 202
    killable_redis.pause()
    try:
        started = time.monotonic()
        response = _post(base, 1)
        elapsed = time.monotonic() - started
    finally:
        killable_redis.resume()
    assert response.status_code == 202
    assert response.json()["warnings"] == {"queue": "spooled"}
    assert elapsed < 5


def test_redis_and_spool_both_down_answer_503(
    make_config: ConfigFactory, killable_redis: KillableRedis, server_for: Callable[..., str]
) -> None:
    config = make_config(redis={"url": killable_redis.url}, server={"spool_path": "/dev/null/not-a-dir/spool.db"})
    base = server_for(config)
    killable_redis.kill()
    response = _post(base, 1)
    assert response.status_code == 503
    assert response.json()["meta"]["code"] == "ERR:MSG:UNAVAILABLE"
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text
    ready = httpx.get(f"{base}/health/ready", timeout=15)
    assert ready.status_code == 503


def test_queued_jobs_survive_a_redis_crash_and_restart(
    make_config: ConfigFactory,
    killable_redis: KillableRedis,
    server_for: Callable[..., str],
    worker_for: Callable[..., object],
) -> None:
    config = make_config(redis={"url": killable_redis.url})
    base = server_for(config)
    ids = [_post(base, n).json()["data"]["id"] for n in range(20)]
    killable_redis.kill()  # at once: with appendfsync always every 202 is on disk already
    killable_redis.start()

    registry = Registry()
    registry.handler("*", name="noop")(lambda event: None)
    worker_for(config, registry).drain()  # type: ignore[attr-defined]
    stored = {row[0] for row in rows(config, "select id from events")}
    assert stored == set(ids)


def test_reconcile_delivers_events_stored_but_never_delivered(
    config: Config, worker_for: Callable[..., object]
) -> None:
    """A Redis without persistence can lose a retry job; the database still knows what is owed."""
    registry = Registry()
    registry.handler("*", name="noop")(lambda event: None)
    worker = worker_for(config, registry)
    [event_id] = enqueue_events(config, gxm_body())

    # Store the event, then lose everything Redis knew before any delivery ran.
    from schemas.wire import QueuedEvent  # noqa: PLC0415
    from workers.store import store_events  # noqa: PLC0415

    context = worker.context  # type: ignore[attr-defined]
    job = context.queue.fetch_job(context.queue.get_job_ids()[0])
    events = [QueuedEvent(*item) for item in job.args[0]]
    with context.sessions() as session, session.begin():
        store_events(session, events, registry, 5)
    context.redis.flushdb()
    engine = create_engine(config.settings.database.url)
    with Session(engine) as session, session.begin():
        session.execute(update(DeliveryRow).values(updated_at=datetime.now(UTC) - timedelta(minutes=5)))
    engine.dispose()

    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "reconcile"], env=config.env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "re-queued 1 stranded deliveries" in result.stdout

    worker.drain()  # type: ignore[attr-defined]
    assert rows(config, "select status, attempts from deliveries where event_id = :e", e=event_id) == [("succeeded", 1)]


def test_a_paused_redis_under_load_costs_one_timeout_not_one_per_batch(
    make_config: ConfigFactory, killable_redis: KillableRedis, server_for: Callable[..., str], tmp_path: Path
) -> None:
    """Many batches, one Redis time-out: after it, batches go straight to the spool.

    What a vendor sees is bounded by the contract (no request hangs past 10 s); that
    the breaker works is read from the server's own log, not from wall-clock time,
    which a loaded 2-core machine stretches.
    """
    import asyncio  # noqa: PLC0415

    config = make_config(redis={"url": killable_redis.url, "socket_timeout_seconds": 1.0})
    base = server_for(config)
    assert _post(base, -1).status_code == 202

    async def burst() -> list[tuple[int, float]]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as client:

            async def one(n: int) -> tuple[int, float]:
                started = time.monotonic()
                response = await client.post(
                    f"{base}/webhooks/gxm", content=gxm_body(payload={"n": n}), headers=gxm_headers()
                )
                return response.status_code, time.monotonic() - started

            return await asyncio.gather(*(one(n) for n in range(200)))

    killable_redis.pause()
    try:
        results = asyncio.run(burst())
    finally:
        killable_redis.resume()
    assert {status for status, _ in results} == {202}
    assert max(elapsed for _, elapsed in results) < 10
    log = "".join(path.read_text(errors="replace") for path in tmp_path.glob("serve-*.log"))
    spooled = [line for line in log.splitlines() if "spooled" in line and "reason=" in line]
    assert len(spooled) > 1, "the burst should have been written to the spool in several batches"
    timed_out = [line for line in spooled if "Timeout" in line]
    assert len(timed_out) == 1, f"{len(timed_out)} batches waited on the paused Redis:\n" + "\n".join(timed_out)


def test_a_redelivery_while_redis_is_down_is_a_duplicate_of_the_spooled_copy(
    make_config: ConfigFactory, killable_redis: KillableRedis, server_for: Callable[..., str]
) -> None:
    config = make_config(redis={"url": killable_redis.url})
    base = server_for(config)
    killable_redis.kill()
    first = _post(base, 1)
    assert first.status_code == 202
    again = _post(base, 1)
    assert again.status_code == 200
    assert again.json()["data"] == {"id": first.json()["data"]["id"], "status": "queued", "duplicate": True}


def test_a_vendor_retry_while_redis_is_down_is_a_duplicate_of_the_spooled_copy_then_drains_once(
    make_config: ConfigFactory, killable_redis: KillableRedis, server_for: Callable[..., str]
) -> None:
    """De-duplication by the vendor's id holds in the spool too: Stripe's retry of one `evt_` is one event."""
    stripe = {"name": "stripe", "preset": "stripe", "secrets": ["whsec_fault"]}
    config = make_config(redis={"url": killable_redis.url}, sources=[stripe])
    base = server_for(config)
    killable_redis.kill()

    def post(body: bytes) -> httpx.Response:
        signed = scheme_for("stripe", ["whsec_fault"]).sign("whsec_fault", body)
        headers = {"Content-Type": "application/json", **signed}
        return httpx.post(f"{base}/webhooks/stripe", content=body, headers=headers, timeout=10)

    first = post(b'{"id": "evt_spooled", "type": "charge.succeeded", "created": 1700000000}')
    assert first.status_code == 202, first.text
    assert first.json()["warnings"] == {"queue": "spooled"}
    again = post(b'{"id": "evt_spooled", "type": "charge.succeeded", "created": 1700000000, "retry": 1}')
    assert again.status_code == 200, again.text
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    killable_redis.start()
    wait_for(lambda: not _spool_rows(config), timeout=20, what="the spool drained")
    queue = Queue("hookyard", connection=killable_redis.client(), serializer=JSONSerializer)
    queued = [msgspec.convert(e, QueuedEvent) for job in queue.get_jobs() for e in job.args[0]]
    assert [(e.id, e.vendor_event_id) for e in queued] == [(first.json()["data"]["id"], "evt_spooled")]
    assert post(b'{"id": "evt_spooled", "type": "charge.succeeded", "created": 1}').status_code == 200


def test_a_paused_redis_costs_the_rate_limiter_one_timeout_not_one_per_request(
    make_config: ConfigFactory, killable_redis: KillableRedis, server_for: Callable[..., str], tmp_path: Path
) -> None:
    """A rate-limited source while Redis is paused: after one limiter time-out, requests skip the limiter
    (fail open, spooled) instead of each waiting for Redis; read from the server's log, not a stopwatch."""
    source = {"name": "gxm", "scheme": "gxm-sha256", "secrets": ["test-secret"], "rate_per_minute": 100000}
    config = make_config(
        redis={"url": killable_redis.url, "socket_timeout_seconds": 1.0},
        sources=[source],
        log={"format": "console", "level": "debug"},
    )
    base = server_for(config)
    assert _post(base, -1).status_code == 202
    killable_redis.pause()
    started = time.monotonic()
    try:
        responses = [_post(base, n) for n in range(20)]
    finally:
        elapsed = time.monotonic() - started
        killable_redis.resume()
    assert {r.status_code for r in responses} == {202}
    assert {r.json()["warnings"]["queue"] for r in responses} == {"spooled"}
    log = "".join(path.read_text(errors="replace") for path in tmp_path.glob("serve-*.log"))
    waited = [line for line in log.splitlines() if "rate_limit_redis_failed" in line]
    # One wait per back-off window (a loaded machine may stretch the burst over more than one), never one each.
    assert 1 <= len(waited) <= 1 + elapsed // BACKOFF_SECONDS, f"{elapsed:.1f} s:\n" + "\n".join(waited)
    assert len(waited) < len(responses) // 2
