"""Handlers for process-level tests: each run is appended to the file named by HOOKYARD_TEST_RECORD.

Behaviour is steered by the payload, so one module serves many tests:
`{"block_on": path}` waits until that file exists, `{"crash": true}` kills
the worker process, `{"hang": true}` never returns.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from workers import Event, handler


def _record(event: Event, name: str) -> None:
    path = os.environ.get("HOOKYARD_TEST_RECORD")
    if path:
        with Path(path).open("a") as out:
            out.write(f"{name} {event.id} {event.attempt} {os.getpid()} {time.time():.6f}\n")
            out.flush()
            os.fsync(out.fileno())


@handler("LOCATION:*", name="record-location")
def record_location(event: Event) -> None:
    _record(event, "record-location")


@handler("*", name="record-all", timeout_seconds=3, max_attempts=3)
def record_all(event: Event) -> None:
    payload = event.payload
    if payload.get("crash"):
        _record(event, "crashing")
        os._exit(9)
    if payload.get("hang"):
        _record(event, "hanging")
        time.sleep(3600)
    block_on = payload.get("block_on")
    if isinstance(block_on, str):
        _record(event, "blocking")
        deadline = time.monotonic() + 120
        while not Path(block_on).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    _record(event, "record-all")


def recorded(path: Path) -> list[tuple[str, str, int, int]]:
    """(handler, event id, attempt, pid) per run, in order."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        name, event_id, attempt, pid, _ = line.split()
        found.append((name, event_id, int(attempt), int(pid)))
    return found
