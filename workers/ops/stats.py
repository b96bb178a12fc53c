"""The numbers behind `GET /v1/stats` and `hookyard stats`.

Every count is an index-backed aggregate: events by `received_at`
(`ix_events_received`), their deliveries through `(event_id, handler)`, and
the open deliveries through `(status, next_attempt_at)`. Queue depths are
O(1) Redis calls (LLEN, ZCARD), never a scan.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
