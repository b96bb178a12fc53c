"""`hookyard stats`: the numbers `GET /v1/stats` gives, in a terminal."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, add_parser, checked, connected, emit, iso

if TYPE_CHECKING:
    from schemas.api_stats import Stats
    from schemas.settings import Settings


def add_command(commands: Subparsers) -> None:
    s = add_parser(
        commands,
        "stats",
        summary="event, delivery and queue numbers (what GET /v1/stats returns)",
        description="Counts over events received since --since, delivery states, RQ queue depths "
        "and the age of the oldest open delivery.",
        examples=["hookyard stats", "hookyard stats --since 7d", "hookyard stats --since 2026-11-01T00:00Z --json"],
    )
    s.add_argument("--since", default="24h", metavar="AGE|TIME", help="an age like 24h or 7d, or an ISO 8601 time")
    s.add_argument("--json", action="store_true", help="print the /v1/stats JSON")
    s.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.ops.stats import collect_stats  # noqa: PLC0415 - commands import the stack when they run

    since = checked(parse_since, args.since, "--since")
    with connected(settings) as connections:
        stats = collect_stats(connections.engine, connections.redis, settings.redis.queue, since)
    return emit(stats, args.json, format_stats)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An age (`24h`) counted back from now, or an ISO 8601 time (UTC if it names no zone)."""
    from workers.ops.retention import parse_duration  # noqa: PLC0415

    try:
        return (now or datetime.now(UTC)) - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither an age like 24h nor an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_stats(stats: Stats) -> str:
    lines = [
        f"since {iso(stats.since)}",
        f"events            {stats.events.total}",
        f"  by status       {_pairs(stats.events.by_status.items())}",
        f"  by action       {_pairs(sorted(stats.events.by_action.items(), key=lambda kv: (-kv[1], kv[0])))}",
        f"deliveries        {_pairs(stats.deliveries.by_status.items())}",
        f"queues            {_pairs(stats.queues.items())}",
        f"oldest pending    {_age(stats.oldest_pending_seconds)}",
    ]
    return "\n".join(lines) + "\n"


def _pairs(items: Iterable[tuple[str, int]]) -> str:
    text = "  ".join(f"{key} {value}" for key, value in items)
    return text or "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    return str(timedelta(seconds=round(seconds)))
