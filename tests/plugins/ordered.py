"""Handlers for the ordering, skip_stale, typed-payload and pause tests (issue 13), run by real workers.

Each run appends `<name> <event id> <attempt> <pid> <start> <end>` to HOOKYARD_TEST_RECORD, so a test
can tell whether two runs overlapped. `{"block_on": path}` waits until that file exists; `{"die": true}`
raises PermanentError. HOOKYARD_TEST_STRUCT_FIXED=1 loads the "fixed" `CompanyCreated`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec

from workers import Event, PermanentError, handler


def _run(event: Event, name: str) -> None:
    started = time.time()
    block_on = event.payload.get("block_on")
    if isinstance(block_on, str):
        deadline = time.monotonic() + 120
        while not Path(block_on).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(float(event.payload.get("sleep", 0.05)))
    if event.payload.get("die"):
        raise PermanentError("told to die")
    path = os.environ.get("HOOKYARD_TEST_RECORD")
    if path:
        with Path(path).open("a") as out:
            out.write(f"{name} {event.id} {event.attempt} {os.getpid()} {started:.6f} {time.time():.6f}\n")
            out.flush()
            os.fsync(out.fileno())


@handler("LOCATION:*", name="ordered", max_attempts=2, ordering_key=lambda e: e.payload["location_id"])
def ordered(event: Event) -> None:
    _run(event, "ordered")


@handler("STOCK:*", name="latest-stock", ordering_key=lambda e: e.payload["sku"], skip_stale=True)
def latest_stock(event: Event) -> None:
    _run(event, "latest-stock")


if os.environ.get("HOOKYARD_TEST_STRUCT_FIXED"):

    class CompanyCreated(msgspec.Struct):
        company_id: int | str
        """The vendor started sending string ids: the fixed Struct takes both."""

else:

    class CompanyCreated(msgspec.Struct):  # type: ignore[no-redef]
        company_id: int


@handler("COMPANY:CREATED", name="typed", payload=CompanyCreated)
def typed(event: Event) -> None:
    assert isinstance(event.data, CompanyCreated)
    _run(event, f"typed:{type(event.data.company_id).__name__}")


class Run(msgspec.Struct, frozen=True):
    name: str
    event_id: str
    attempt: int
    pid: int
    start: float
    end: float


def runs(path: Path, name: str | None = None) -> list[Run]:
    """The recorded runs, in the order they finished."""
    if not path.exists():
        return []
    found: list[Any] = [line.split() for line in path.read_text().splitlines()]
    return [
        Run(f[0], f[1], int(f[2]), int(f[3]), float(f[4]), float(f[5])) for f in found if name is None or f[0] == name
    ]
