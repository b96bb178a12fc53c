"""The console's Jinja environment: autoescaped templates from `templates/`, and the filters they use.

Times are shown in UTC with their age ("3 min ago"); payloads pretty-printed
from the stored text without decoding it (key order and number spelling
kept); ids in full, so they can be copied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")


def utc(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`42 s ago`, `3 min ago`, `5 h ago`, `2 d ago` (`in 10 s` for a time ahead)."""
    if moment is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    ahead, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            break
    else:
        amount = f"{int(seconds)} s"
    return f"in {amount}" if ahead else f"{amount} ago"


def number(value: int | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def pretty_json(raw: msgspec.Raw | bytes | str | Any) -> str:
    """Indented JSON from the stored text, never decoded into Python objects (so nothing is re-spelt)."""
    data = bytes(raw) if isinstance(raw, msgspec.Raw | bytes) else str(raw).encode()
    try:
        return msgspec.json.format(data, indent=2).decode("utf-8", "replace")
    except msgspec.DecodeError:
        return data.decode("utf-8", "replace")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(utc=utc, iso=iso, ago=ago, number=number, duration=duration, pretty_json=pretty_json)
    return env
