"""The numbers behind `GET /v1/stats`, `hookyard stats` and the console's overview and handlers pages.

Every count is an index-backed aggregate: events by `received_at`
(`ix_events_received`), their deliveries through `(event_id, handler)`, and
the open deliveries through `(status, next_attempt_at)`. Queue depths are
O(1) Redis calls (LLEN, ZCARD), never a scan.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from schemas.api_stats import DeliveryCounts, EventCounts, Stats
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus


def queue_depths(redis_client: redis.Redis, queue_name: str) -> dict[str, int]:
    """Waiting jobs, plus RQ's scheduled (retry back-off) and failed registries."""
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.llen(f"rq:queue:{queue_name}")
        pipe.zcard(f"rq:scheduled:{queue_name}")
        pipe.zcard(f"rq:failed:{queue_name}")
        waiting, scheduled, failed = pipe.execute()
    return {queue_name: waiting, f"{queue_name}:scheduled": scheduled, f"{queue_name}:failed": failed}


def collect_stats(
    session_or_engine: Session | Engine,
    redis_client: redis.Redis,
    queue_name: str,
    since: datetime,
    *,
    now: datetime | None = None,
) -> Stats:
    """Counts over events received at or after `since`; Redis errors propagate to the caller."""
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    if isinstance(session_or_engine, Session):
        counts = database_counts(session_or_engine, since, now or datetime.now(UTC))
    else:
        with Session(session_or_engine) as session:
            counts = database_counts(session, since, now or datetime.now(UTC))
    events, deliveries, oldest = counts
    return Stats(
        since=since.astimezone(UTC),
        events=events,
        deliveries=deliveries,
        queues=queue_depths(redis_client, queue_name),
        oldest_pending_seconds=oldest,
    )


def database_counts(
    session: Session, since: datetime, now: datetime
) -> tuple[EventCounts, DeliveryCounts, float | None]:
    recent = EventRow.received_at >= since
    by_action = dict(
        session.execute(select(EventRow.action, func.count()).where(recent).group_by(EventRow.action)).tuples().all()
    )
    by_status = dict.fromkeys(EventStatus.ALL, 0)
    by_status.update(
        session.execute(select(EventRow.status, func.count()).where(recent).group_by(EventRow.status)).tuples().all()
    )
    deliveries = dict.fromkeys(DeliveryStatus.ALL, 0)
    deliveries.update(
        session.execute(
            select(DeliveryRow.status, func.count())
            .join(EventRow, EventRow.id == DeliveryRow.event_id)
            .where(recent)
            .group_by(DeliveryRow.status)
        )
        .tuples()
        .all()
    )
    oldest_created = session.scalar(
        select(func.min(DeliveryRow.created_at)).where(DeliveryRow.status.in_(DeliveryStatus.OPEN))
    )
    oldest = None
    if oldest_created is not None:
        oldest = max(0.0, (now - oldest_created).total_seconds())
    events = EventCounts(total=sum(by_status.values()), by_action=by_action, by_status=by_status)
    return events, DeliveryCounts(by_status=deliveries), oldest


class MinuteCounts(msgspec.Struct, frozen=True):
    minute: datetime
    events: int
    failed: int
    """Of those events, how many are `failed` now (a delivery went dead)."""


def per_minute(session: Session, since: datetime, now: datetime) -> list[MinuteCounts]:
    """Events received, and failed events, per minute from `since` to `now` (every minute present, zeros too).

    Two index-only aggregates: all events on `ix_events_received`, failed ones on `ix_events_status_received`.
    """
    start = since.astimezone(UTC).replace(second=0, microsecond=0)
    minutes = int((now - start).total_seconds() // 60) + 1
    bucket = _minute_bucket(session)
    window = (EventRow.received_at >= start, EventRow.received_at <= now)
    totals = session.execute(select(bucket, func.count()).where(*window).group_by(bucket)).tuples().all()
    failed = (
        session.execute(
            select(bucket, func.count()).where(*window, EventRow.status == EventStatus.FAILED).group_by(bucket)
        )
        .tuples()
        .all()
    )
    events_at = [0] * minutes
    failed_at = [0] * minutes
    for found, into in ((totals, events_at), (failed, failed_at)):
        for key, count in found:
            index = int((_as_minute(key) - start).total_seconds() // 60)
            if 0 <= index < minutes:
                into[index] += int(count)
    return [
        MinuteCounts(minute=start + timedelta(minutes=i), events=events_at[i], failed=failed_at[i])
        for i in range(minutes)
    ]


def _minute_bucket(session: Session) -> Any:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return func.date_trunc("minute", EventRow.received_at)
    return func.strftime("%Y-%m-%d %H:%M", EventRow.received_at)  # SQLite keeps UTC text


def _as_minute(key: datetime | str) -> datetime:
    if isinstance(key, datetime):
        return key.astimezone(UTC) if key.tzinfo else key.replace(tzinfo=UTC)
    return datetime.strptime(key, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def handler_outcomes(session: Session, since: datetime) -> dict[str, dict[str, int]]:
    """Deliveries per handler and status among those updated at or after `since` (every status present)."""
    found: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(DeliveryRow.handler, DeliveryRow.status, func.count())
        .where(DeliveryRow.updated_at >= since)
        .group_by(DeliveryRow.handler, DeliveryRow.status)
    ).tuples()
    for handler, status, count in rows:
        found.setdefault(handler, dict.fromkeys(DeliveryStatus.ALL, 0))[status] = int(count)
    return found


def stats_or_counts(
    engine: Engine, redis_client: redis.Redis, queue_name: str, since: datetime, now: datetime
) -> tuple[Stats, bool]:
    """`collect_stats`, or, when Redis does not answer, the database counts with empty `queues`.

    Returns the stats and whether Redis answered: a Redis outage is when a dashboard is needed most.
    """
    try:
        return collect_stats(engine, redis_client, queue_name, since, now=now), True
    except (redis.RedisError, OSError):
        pass
    with Session(engine) as session:
        events, deliveries, oldest = database_counts(session, since, now)
    return Stats(since=since, events=events, deliveries=deliveries, queues={}, oldest_pending_seconds=oldest), False
