"""Ordering keys and skip_stale through a real `hookyard serve` and a real worker with 2 processes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, Config, ConfigFactory, Process, gxm_body, gxm_headers, rows, wait_for
from tests.plugins.ordered import runs


@pytest.fixture
def stack(
    make_config: ConfigFactory, spawn: Callable[..., Process], server_for: Callable[[Config], str], tmp_path: Path
) -> tuple[Config, str, Path]:
    """serve + `hookyard worker --processes 2`; one event per job, so both processes take jobs."""
    config = make_config(handler_modules=["tests.plugins.ordered"], worker={"batch_size": 1})
    record = tmp_path / "record.txt"
    base = server_for(config)
    spawn(["worker", "--processes", "2"], config.env(HOOKYARD_TEST_RECORD=str(record)), name="worker")
    return config, base, record


def post(base: str, action: str, sent_at: int, **payload: Any) -> str:
    response = httpx.post(
        f"{base}/webhooks/gxm", content=gxm_body(action, payload=payload, sent_at=sent_at), headers=gxm_headers()
    )
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def delivery(config: Config, event_id: str) -> tuple[str, int, str | None]:
    found = rows(config, "select status, attempts, last_error from deliveries where event_id = :e", e=event_id)
    return (found[0][0], found[0][1], found[0][2]) if found else ("none", 0, None)


def event_status(config: Config, event_id: str) -> str:
    return str(rows(config, "select status from events where id = :e", e=event_id)[0][0])


def test_one_location_runs_one_at_a_time_in_sent_at_order_while_others_run_in_parallel(
    stack: tuple[Config, str, Path], tmp_path: Path
) -> None:
    config, base, record = stack
    gate = tmp_path / "gate"
    first = post(base, "LOCATION:UPDATED", 1000, location_id=7, block_on=str(gate))
    wait_for(lambda: delivery(config, first)[:2] == ("pending", 1), timeout=30, what="the first update to start")

    # Stored while the first one runs, and posted out of order: 1003 before 1002.
    third = post(base, "LOCATION:UPDATED", 1003, location_id=7)
    second = post(base, "LOCATION:UPDATED", 1002, location_id=7)
    others = [post(base, "LOCATION:UPDATED", 2000 + n, location_id=8) for n in range(3)]

    # Location 8 runs on the other process while location 7's first update is still running.
    wait_for(
        lambda: all(delivery(config, e)[0] == "succeeded" for e in others), timeout=30, what="location 8 to finish"
    )
    assert delivery(config, second)[:2] == ("pending", 0)
    assert delivery(config, third)[:2] == ("pending", 0)
    assert event_status(config, second) == "processing"

    gate.touch()
    wait_for(
        lambda: all(delivery(config, e)[0] == "succeeded" for e in (first, second, third)),
        timeout=60,
        what="location 7's updates to finish",
    )
    location_7 = sorted(
        (r for r in runs(record, "ordered") if r.event_id in {first, second, third}), key=lambda r: r.start
    )
    assert [r.event_id for r in location_7] == [first, second, third]
    for earlier, later in itertools.pairwise(location_7):
        assert earlier.end <= later.start, "two updates of one location overlapped"
    location_8 = [r for r in runs(record, "ordered") if r.event_id in set(others)]
    assert max(r.end for r in location_8) < location_7[0].end
    assert {r.pid for r in location_8} != {location_7[0].pid}
    assert all(event_status(config, e) == "processed" for e in (first, second, third, *others))


def test_a_dead_delivery_no_longer_blocks_its_key(stack: tuple[Config, str, Path], tmp_path: Path) -> None:
    config, base, _ = stack
    gate = tmp_path / "gate"
    doomed = post(base, "LOCATION:UPDATED", 3000, location_id=9, block_on=str(gate), die=True)
    wait_for(lambda: delivery(config, doomed)[:2] == ("pending", 1), timeout=30, what="the doomed update to start")
    after = post(base, "LOCATION:UPDATED", 3001, location_id=9)
    wait_for(lambda: delivery(config, after)[0] == "pending", timeout=30, what="the next update to be stored")
    gate.touch()
    wait_for(lambda: delivery(config, after)[0] == "succeeded", timeout=60, what="the next update to run")
    status, attempts, error = delivery(config, doomed)
    assert (status, attempts) == ("dead", 1)
    assert error is not None
    assert "told to die" in error
    assert event_status(config, doomed) == "failed"


def test_an_ordering_key_that_raises_fails_its_delivery_and_others_go_on(stack: tuple[Config, str, Path]) -> None:
    config, base, _ = stack
    keyless = post(base, "LOCATION:UPDATED", 4000, name="no location id")
    fine = post(base, "LOCATION:UPDATED", 4001, location_id=10)
    wait_for(lambda: delivery(config, fine)[0] == "succeeded", timeout=30, what="the good update")
    wait_for(lambda: delivery(config, keyless)[0] == "dead", timeout=30, what="the keyless update to give up")
    _status, attempts, error = delivery(config, keyless)
    assert attempts == 2  # retried like any failure (max_attempts=2), then dead
    assert error is not None
    assert error.startswith("KeyError: 'location_id'")


def test_skip_stale_skips_an_update_older_than_one_already_applied(stack: tuple[Config, str, Path]) -> None:
    config, base, record = stack
    newer = post(base, "STOCK:CHANGED", 5000, sku="A-1", level=3)
    wait_for(lambda: delivery(config, newer)[0] == "succeeded", timeout=30, what="the newer update")
    older = post(base, "STOCK:CHANGED", 4000, sku="A-1", level=9)
    other_sku = post(base, "STOCK:CHANGED", 4000, sku="B-2", level=1)
    wait_for(lambda: delivery(config, older)[0] == "skipped", timeout=30, what="the stale update to be skipped")
    _status, attempts, error = delivery(config, older)
    assert attempts == 0
    assert error is not None
    assert error.startswith("stale:")
    assert event_status(config, older) == "processed"
    wait_for(lambda: delivery(config, other_sku)[0] == "succeeded", timeout=30, what="another key's older update")
    latest = post(base, "STOCK:CHANGED", 6000, sku="A-1", level=1)
    wait_for(lambda: delivery(config, latest)[0] == "succeeded", timeout=30, what="a newer update")
    assert older not in {r.event_id for r in runs(record, "latest-stock")}

    listed = httpx.get(
        f"{base}/v1/deliveries", params={"status": "skipped"}, headers={"X-API-Key": ADMIN_KEY}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    assert [d["event_id"] for d in listed.json()["data"]] == [older]
