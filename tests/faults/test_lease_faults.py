"""A live worker keeps its leases: a stalled outcome write or a lapsed lease time never runs a handler twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text, update

from schemas.tables import DeliveryRow
from tests.conftest import POSTGRES_ENV, Config, ConfigFactory, Process, gxm_body, gxm_headers, rows, wait_for
from tests.plugins.recording import recorded
from workers import lease
from workers.context import WorkerContext
from workers.registry import Registry

pytestmark = pytest.mark.faults

ACTION = "THING:CREATED"
"""Matches only the recording plugin's `record-all`: one delivery per event."""


def _post(base: str, **payload: object) -> str:
    response = httpx.post(
        f"{base}/webhooks/gxm", content=gxm_body(ACTION, payload=dict(payload)), headers=gxm_headers(), timeout=10
    )
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def _delivery(config: Config, event_id: str) -> tuple[int, str, int]:
    [(delivery_id, status, attempts)] = rows(
        config, "select id, status, attempts from deliveries where event_id = :e", e=event_id
    )
    return int(delivery_id), str(status), int(attempts)


def _runs(record: Path, event_id: str) -> list[tuple[str, str, int, int]]:
    return [r for r in recorded(record) if r[0] == "record-all" and r[1] == event_id]


@pytest.fixture
def recording(make_config: ConfigFactory, tmp_path: Path) -> tuple[Config, dict[str, str], Path]:
    # Leases of 1 + 2 s (the recording handler's own limit is 3 s: 5 s in all); heartbeats every second.
    config = make_config(handler_modules=["tests.plugins.recording"], handlers={"timeout_seconds": 1})
    record = tmp_path / "record.txt"
    return config, config.env(HOOKYARD_TEST_RECORD=str(record)), record


@pytest.mark.timeout(120)
@pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} not set")
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_stalled_outcome_write_never_runs_a_succeeded_handler_again(
    recording: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The handler succeeds, then its outcome write waits on a row lock far past the lease while another
    worker sweeps: the handler ran once, and the delivery ends succeeded."""
    config, env, record = recording
    base = server_for(config)
    spawn(["worker"], env, name="worker-a")
    unblock = tmp_path / "unblock"
    event_id = _post(base, block_on=str(unblock))
    wait_for(lambda: [r for r in recorded(record) if r[0] == "blocking"], timeout=30, what="the handler to start")
    spawn(["worker"], env, name="worker-b")  # its maintenance pass sweeps every 2 s

    engine = create_engine(config.settings.database.url)
    try:
        with engine.connect() as stall:
            transaction = stall.begin()
            stall.execute(text("select id from events where id = :e for update"), {"e": event_id})
            unblock.touch()  # the handler succeeds; its outcome write now waits for this lock
            wait_for(lambda: _runs(record, event_id), timeout=30, what="the handler to succeed")
            time.sleep(12)  # more than twice the lease, several sweeps
            [(lapsed,)] = rows(
                config,
                "select lease_until < statement_timestamp() from deliveries where event_id = :e",
                e=event_id,
            )
            assert lapsed, "the stall must outlast the lease, or this test proves nothing"
            transaction.commit()
    finally:
        engine.dispose()

    wait_for(lambda: _delivery(config, event_id)[1] == "succeeded", timeout=30, what="the outcome")
    time.sleep(3)  # anything wrongly re-queued would run now
    assert len(_runs(record, event_id)) == 1, recorded(record)
    assert _delivery(config, event_id)[1:] == ("succeeded", 1)
    assert rows(config, "select status from events where id = :e", e=event_id) == [("processed",)]


@pytest.mark.timeout(120)
def test_a_live_workers_lapsed_lease_is_not_swept_and_a_dead_ones_is(
    recording: tuple[Config, dict[str, str], Path],
    spawn: Callable[..., Process],
    server_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    """A lease time in the past does not make a delivery stranded while its worker still beats; once the
    worker is killed, its lease is swept as before."""
    config, env, record = recording
    base = server_for(config)
    worker = spawn(["worker"], env, name="worker-a")
    event_id = _post(base, block_on=str(tmp_path / "never"))
    wait_for(lambda: [r for r in recorded(record) if r[0] == "blocking"], timeout=30, what="the handler to start")
    delivery_id = _delivery(config, event_id)[0]
    [(owner,)] = rows(config, "select lease_owner from deliveries where id = :d", d=delivery_id)
    assert owner

    context = WorkerContext.build(config.settings, registry=Registry(), load_plugins=False)
    try:

        def lapse() -> None:  # an hour ago, by the database's clock
            with context.connections.transaction() as session:
                session.execute(
                    update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(lease_until=lease.db_now(-3600))
                )

        def lapsed() -> bool:
            with context.sessions() as session:
                past = DeliveryRow.lease_until < lease.db_now(-1800)
                return bool(session.scalar(select(past).where(DeliveryRow.id == delivery_id)))

        for _ in range(20):  # the worker's renewal may land between the update and the sweep: then again
            lapse()
            stranded = lease.find_stranded(context)
            if lapsed():
                break
        else:
            raise AssertionError("could not observe a lapsed lease")
        assert delivery_id not in stranded

        os.killpg(worker.popen.pid, signal.SIGKILL)
        worker.popen.wait()
        lapse()
        assert wait_for(
            lambda: delivery_id in lease.find_stranded(context), timeout=15, what="the dead worker's lease to be swept"
        )
    finally:
        context.close()
