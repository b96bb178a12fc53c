"""Retention: delete events older than a cutoff, a small batch at a time.

The same cutoff prunes the rejection ledger and finished bulk replays; expired
console sessions go whatever the cutoff.

Each batch is its own short transaction, so ingest and workers never wait
behind a purge for more than one batch. On PostgreSQL rows another
transaction holds (a worker updating a delivery) are skipped, not waited
for; the next run takes them. After each batch commits, the purged events'
de-duplication fingerprints are removed from Redis, so a re-delivery is a
duplicate exactly as long as the first event is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import redis
from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session

from schemas.tables import ConsoleSessionRow, DeliveryRow, EventRow, RejectionRow, ReplayRow
from workers.ops.fingerprints import HDEL_IF_OWNED, forget_with

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

class PurgeReport(msgspec.Struct, kw_only=True):
    cutoff: datetime
    """Events received before this instant were (or, in a dry run, would be) deleted."""
    events: int
    deliveries: int
    fingerprints: int
    """De-duplication entries removed from Redis."""
    batches: int
    dry_run: bool
    rejections: int = 0
    """Rejection-ledger rows received before the cutoff."""
    replays: int = 0
    """Bulk replays finished before the cutoff."""


class PurgeError(Exception):
    """Redis failed after rows were deleted; their fingerprints may still be in Redis."""


MAX_AGE_DAYS = 365_000
"""The longest `--older-than`, in days (1,000 years): a cutoff further back is before year 1."""


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `3600s` or `2w`; anything else (zero, or past `MAX_AGE_DAYS`) is a ValueError."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h, 30m or 3600s")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_AGE_DAYS * 86_400:
        raise ValueError(f"{text!r} is too long (at most {MAX_AGE_DAYS}d): nothing is older")
    return timedelta(seconds=seconds)


def purge(
    engine: Engine,
    redis_client: redis.Redis,
    older_than: timedelta,
    batch_size: int = 1000,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> PurgeReport:
    """Delete events received before `now - older_than`, their deliveries and fingerprints.

    `on_batch(events)` is called after each committed batch (the CLI's progress).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or datetime.now(UTC)) - older_than
    if dry_run:
        return _count(engine, cutoff)
    events = deliveries = fingerprints = batches = 0
    hdel = redis_client.register_script(HDEL_IF_OWNED)
    while True:
        with Session(engine) as session, session.begin():
            rows = (
                session.execute(
                    select(EventRow.id, EventRow.source, EventRow.fingerprint)
                    .where(EventRow.received_at < cutoff)
                    .order_by(EventRow.received_at, EventRow.id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
                .tuples()
                .all()
            )
            if not rows:
                break
            ids = [event_id for event_id, _, _ in rows]
            deliveries += _rowcount(session.execute(delete(DeliveryRow).where(DeliveryRow.event_id.in_(ids))))
            events += _rowcount(session.execute(delete(EventRow).where(EventRow.id.in_(ids))))
        batches += 1
        if on_batch is not None:
            on_batch(len(rows))
        try:
            fingerprints += forget_with(hdel, rows)
        except redis.RedisError as exc:
            raise PurgeError(
                f"deleted {events} events but Redis failed while removing their fingerprints: {exc}"
            ) from exc
    rejections, replays = _prune_operations(engine, cutoff, batch_size, now or datetime.now(UTC))
    return PurgeReport(
        cutoff=cutoff,
        events=events,
        deliveries=deliveries,
        fingerprints=fingerprints,
        batches=batches,
        dry_run=False,
        rejections=rejections,
        replays=replays,
    )


def _prune_operations(engine: Engine, cutoff: datetime, batch_size: int, now: datetime) -> tuple[int, int]:
    """Ledger rows and finished replays older than the cutoff, and expired console sessions, in batches."""
    rejections = replays = 0
    while True:
        with Session(engine) as session, session.begin():
            chosen = (
                select(RejectionRow.id)
                .where(RejectionRow.received_at < cutoff)
                .order_by(RejectionRow.received_at, RejectionRow.id)
                .limit(batch_size)
            )
            ids = list(session.scalars(chosen))
            if not ids:
                break
            rejections += _rowcount(session.execute(delete(RejectionRow).where(RejectionRow.id.in_(ids))))
    with Session(engine) as session, session.begin():
        replays = _rowcount(session.execute(delete(ReplayRow).where(ReplayRow.finished_at < cutoff)))
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))
    return rejections, replays


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def _count(engine: Engine, cutoff: datetime) -> PurgeReport:
    with Session(engine) as session:
        events = session.scalar(select(func.count()).where(EventRow.received_at < cutoff)) or 0
        deliveries = (
            session.scalar(
                select(func.count())
                .select_from(DeliveryRow)
                .join(EventRow, EventRow.id == DeliveryRow.event_id)
                .where(EventRow.received_at < cutoff)
            )
            or 0
        )
        rejections = session.scalar(select(func.count()).where(RejectionRow.received_at < cutoff)) or 0
        replays = session.scalar(select(func.count()).where(ReplayRow.finished_at < cutoff)) or 0
    return PurgeReport(
        cutoff=cutoff,
        events=events,
        deliveries=deliveries,
        fingerprints=0,
        batches=0,
        dry_run=True,
        rejections=rejections,
        replays=replays,
    )
