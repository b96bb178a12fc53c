"""Handlers for the vendor end-to-end tests: each run appends one JSON line to HOOKYARD_TEST_RECORD."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from workers import Event, handler


def _record(event: Event, name: str) -> None:
    path = os.environ.get("HOOKYARD_TEST_RECORD")
    if not path:
        return
    line = {
        "handler": name,
        "id": event.id,
        "source": event.source,
        "action": event.action,
        "vendor_event_id": event.vendor_event_id,
        "headers": event.headers,
        "payload": event.payload,
        "sent_at": int(event.sent_at.timestamp()),
    }
    with Path(path).open("ab") as out:
        out.write(msgspec.json.encode(line) + b"\n")
        out.flush()
        os.fsync(out.fileno())


@handler("PAYMENT_INTENT:*", name="stripe-payments")
def payments(event: Event) -> None:
    _record(event, "stripe-payments")


@handler("PUSH", name="github-push")
def push(event: Event) -> None:
    _record(event, "github-push")


@handler("PULL_REQUEST:*", name="github-pulls")
def pulls(event: Event) -> None:
    _record(event, "github-pulls")


@handler("*:*:UPDATED", name="three-part-updates")
def updates(event: Event) -> None:
    _record(event, "three-part-updates")


@handler("ORDERS:*", "EVENT_CALLBACK:*", "USER:*", name="the-rest")
def the_rest(event: Event) -> None:
    _record(event, "the-rest")


def recorded(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line]
