"""A bulk replay survives its worker being killed: another worker finishes it, each batch done once.

Most of the test's minute is RQ's: the killed worker held the scheduler lock,
which lapses after about 60 s, and only then is the abandoned replay job's
retry scheduled.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from rq.registry import FailedJobRegistry
from sqlalchemy import create_engine, func, insert, select

from schemas.ids import new_event_id
from schemas.tables import DeliveryRow, EventRow
from tests.conftest import ADMIN_KEY, ConfigFactory, Process, wait_for
from workers.shared.connections import Connections

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

DEAD = 30_000


def _seed_dead(url: str, handler: str, count: int) -> None:
    """`count` events, each with a dead delivery of `handler`, as bulk rows."""
    start = datetime.now(UTC) - timedelta(hours=2)
    events, deliveries = [], []
    for i in range(count):
        received = start + timedelta(milliseconds=i)
        event_id = new_event_id(int(received.timestamp() * 1000))
        events.append(
            {
                "id": event_id,
                "source": "gxm",
                "fingerprint": uuid.uuid4().hex,
                "action": "LOCATION:CREATED",
                "resource": "LOCATION",
                "verb": "CREATED",
                "sent_at": int(received.timestamp()),
                "received_at": received,
                "stored_at": received,
                "status": "failed",
                "request_id": "seed",
                "payload": "{}",
                "body": "{}",
            }
        )
        deliveries.append(
            {
                "event_id": event_id,
                "handler": handler,
                "status": "dead",
                "attempts": 5,
                "max_attempts": 5,
                "last_error": "boom",
                "created_at": received,
                "updated_at": received,
            }
        )
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(EventRow), events)
        conn.execute(insert(DeliveryRow), deliveries)
    engine.dispose()


def test_a_worker_killed_mid_replay_has_the_replay_finished_by_another(
    make_config: ConfigFactory, spawn: Callable[..., Process], server_for: Callable[..., str]
) -> None:
    config = make_config(handler_modules=["workers.builtin"])
    _seed_dead(config.settings.database.url, "log-event", DEAD)
    base = server_for(config)
    admin = {"X-API-Key": ADMIN_KEY}
    first = spawn(["worker"], config.env(), name="worker-a")
    created = httpx.post(
        f"{base}/v1/replays",
        json={"filter": {"handlers": ["log-event"], "delivery_status": "dead"}},
        headers=admin,
        timeout=60,
    )
    assert created.status_code == 201, created.text
    location = f"{base}{created.headers['location']}"
    assert created.json()["data"]["deliveries"] == DEAD

    def progress() -> dict[str, object]:
        return httpx.get(location, headers=admin, timeout=10).json()["data"]

    midway = wait_for(
        lambda: (p := progress())["status"] == "running" and 0 < p["queued"] < DEAD and p,  # type: ignore[operator]
        timeout=60,
        interval=0.02,
        what="the replay to be under way",
    )
    os.killpg(first.popen.pid, signal.SIGKILL)
    first.popen.wait()
    assert progress()["status"] != "done", midway

    spawn(["worker"], config.env(), name="worker-b")
    done = wait_for(lambda: (p := progress())["status"] == "done" and p, timeout=90, what="the replay to finish")
    assert (done["queued"], done["deliveries"], done["events"]) == (DEAD, DEAD, DEAD)

    engine = create_engine(config.settings.database.url)
    with engine.connect() as conn:
        still_dead = conn.execute(
            select(func.count()).where(DeliveryRow.status == "dead", DeliveryRow.max_attempts == 5)
        ).scalar_one()
    engine.dispose()
    assert still_dead == 0  # every chosen delivery got its fresh budget
    connections = Connections(config.settings)
    try:
        assert FailedJobRegistry(queue=connections.queue).count == 0
    finally:
        connections.close()
