"""Operator subcommands `hookyard purge` and `hookyard stats`.

`service.cli` calls `add_ops_commands(subparsers)`. Like the other
subcommands, each stores its handler as `func`:
`args.func(args, settings) -> exit code`. Bad arguments are one line on
stderr and exit 2, like bad configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import msgspec
import redis
from sqlalchemy.exc import SQLAlchemyError

from schemas.api_stats import Stats
from schemas.settings import Settings
from workers.db import make_engine
from workers.redis_conn import redis_from_url
from workers.retention import PurgeError, PurgeReport, parse_duration, purge
from workers.stats import collect_stats

Handler = Callable[[argparse.Namespace, Settings], int]


def add_ops_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `purge` and `stats` on the `hookyard` parser's subcommands."""
    p = subparsers.add_parser(
        "purge",
        help="delete stored events older than a cutoff, in small batches",
        description="Delete events (and their deliveries and de-duplication fingerprints) "
        "received before now minus --older-than. Safe beside running ingest and workers.",
    )
    p.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 90d, 12h, 30m, 3600s")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N", help="events per transaction")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_purge)

    s = subparsers.add_parser(
        "stats",
        help="event, delivery and queue numbers (what GET /v1/stats returns)",
        description="Counts over events received since --since, delivery states, RQ queue depths "
        "and the age of the oldest open delivery.",
    )
    s.add_argument("--since", default="24h", metavar="AGE|TIME", help="24h, 7d, or an ISO 8601 time")
    s.add_argument("--json", action="store_true", help="print the /v1/stats JSON")
    s.set_defaults(func=run_stats)


def run_purge(args: argparse.Namespace, settings: Settings) -> int:
    try:
        older_than = parse_duration(args.older_than)
    except ValueError as exc:
        return _usage_error(f"purge: --older-than: {exc}")
    if args.batch_size < 1:
        return _usage_error("purge: --batch-size: must be at least 1")
    engine = make_engine(settings.database)
    client = redis_from_url(settings.redis.url, socket_timeout=settings.redis.socket_timeout_seconds)
    try:
        report = purge(engine, client, older_than, batch_size=args.batch_size, dry_run=args.dry_run)
    except (PurgeError, SQLAlchemyError, redis.RedisError) as exc:
        sys.stderr.write(f"hookyard purge: {_one_line(exc)}\n")
        return 1
    finally:
        client.close()
        engine.dispose()
    sys.stdout.write(msgspec.json.encode(report).decode() + "\n" if args.json else format_purge(report))
    return 0


def run_stats(args: argparse.Namespace, settings: Settings) -> int:
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        return _usage_error(f"stats: --since: {exc}")
    engine = make_engine(settings.database)
    client = redis_from_url(settings.redis.url, socket_timeout=settings.redis.socket_timeout_seconds)
    try:
        stats = collect_stats(engine, client, settings.redis.queue, since)
    except (SQLAlchemyError, redis.RedisError) as exc:
        sys.stderr.write(f"hookyard stats: {_one_line(exc)}\n")
        return 1
    finally:
        client.close()
        engine.dispose()
    sys.stdout.write(msgspec.json.encode(stats).decode() + "\n" if args.json else format_stats(stats))
    return 0


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An age (`24h`) counted back from now, or an ISO 8601 time (UTC if it names no zone)."""
    try:
        return (now or datetime.now(UTC)) - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither an age like 24h nor an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_purge(report: PurgeReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    lines = [
        f"{verb} {report.events} events and {report.deliveries} deliveries received before {_iso(report.cutoff)}",
    ]
    if not report.dry_run:
        lines.append(f"removed {report.fingerprints} fingerprints in {report.batches} batches")
    return "\n".join(lines) + "\n"


def format_stats(stats: Stats) -> str:
    lines = [
        f"since {_iso(stats.since)}",
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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _usage_error(message: str) -> int:
    sys.stderr.write(f"hookyard {message}\n")
    return 2
