"""The `/v1` read API for dashboards."""

from __future__ import annotations

from typing import Any


def route_handlers() -> list[Any]:
    return []
