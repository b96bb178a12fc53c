"""The RQ jobs. Both are idempotent, so RQ may run them again after any failure.

- `store_batch(events)`: written by ingest's Lua script (one job per group
  commit); stores the events, plans deliveries, runs them at once in-process.
- `run_deliveries(ids)`: retries (scheduled with RQ's scheduler), replays and
  the sweeper's recoveries.

While the database is unreachable a job waits with backoff instead of
failing; if the worker is asked to stop meanwhile, the job puts its work
back on the queue and returns, so nothing is marked failed or lost because
the database was away.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy import and_, or_, select

from schemas.tables import DeliveryRow, DeliveryStatus
from schemas.wire import QueuedEvent
from workers.context import HandBack, WorkerContext, get_context
from workers.deliver import DeliveryRunner, Outcome
from workers.handler_metrics import record_outcomes
from workers.shared.defaults import LEASE_GRACE_SECONDS, STALE_PENDING_SECONDS, STORE_BATCH, SWEEP_LIMIT, job_options
from workers.store import Stored, open_deliveries, store_events

log = structlog.get_logger("hookyard.jobs")


def runner_for(context: WorkerContext) -> DeliveryRunner:
    def schedule(ids: list[int], delay: float) -> None:
        context.connections.queue_deliveries(ids, delay)

    def record(outcomes: list[Outcome]) -> None:
        record_outcomes(context.redis, outcomes)

    return DeliveryRunner(
        context.sessions,
        context.registry,
        context.settings.handlers,
        schedule,
        on_recorded=record,
        stopping=context.stopping,
        single_statements=context.connections.single_statements,
        progress=context.progress,
    )


def store_batch(events: list[Any]) -> int:
    """Store, claim and run: two commits per batch (store + claim, outcomes), handlers between."""
    context = get_context()
    queued = msgspec.convert(events, list[QueuedEvent])
    settings = context.settings.handlers
    runner = runner_for(context)

    def store() -> tuple[Stored, datetime]:
        lease = runner.lease_until(datetime.now(UTC))
        with context.connections.one_statement() as session:  # bulk.store_and_claim is one statement on PG
            return store_events(session, queued, context.registry, settings.default_max_attempts, lease), lease

    try:
        stored, lease_until = context.with_database(store)
        log.info(
            "events_stored",
            events=len(stored.events),
            deliveries=len(stored.claimed),
            event_ids=[e.id for e in queued[:20]],
            request_ids=[e.request_id for e in queued[:20]],
        )
        outcomes = runner.run_claimed(stored.claimed, stored.events, lease_until)
        if outcomes:
            context.with_database(lambda: runner.record(outcomes, complete=True))
        if stored.earlier:  # this job ran before (its worker died): finish what that run left open
            earlier = stored.earlier

            def reopen() -> list[int]:
                with context.sessions() as session:
                    return open_deliveries(session, earlier)

            delivery_ids = context.with_database(reopen)
            context.with_database(lambda: runner.run(delivery_ids))
    except HandBack:
        context.queue.enqueue(STORE_BATCH, queued, at_front=True, **job_options(f"store {len(queued)} event(s)"))
        log.warning("handed_back", events=len(queued))
    return len(queued)


def run_deliveries(delivery_ids: list[int]) -> int:
    context = get_context()
    runner = runner_for(context)
    try:
        outcomes = context.with_database(lambda: runner.run(delivery_ids))
    except HandBack:
        context.connections.queue_deliveries(delivery_ids)
        log.warning("handed_back", deliveries=len(delivery_ids))
        return 0
    return len(outcomes)


def find_stranded(context: WorkerContext, limit: int = SWEEP_LIMIT) -> list[int]:
    """Open deliveries that nothing will run: their worker died, or their job was lost."""
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=STALE_PENDING_SECONDS)
    late = now - timedelta(seconds=LEASE_GRACE_SECONDS + STALE_PENDING_SECONDS)
    with context.sessions() as session:
        return list(
            session.scalars(
                select(DeliveryRow.id)
                .where(
                    DeliveryRow.status.in_(DeliveryStatus.OPEN),
                    or_(
                        DeliveryRow.lease_until < now,
                        and_(
                            DeliveryRow.lease_until.is_(None),
                            DeliveryRow.status == DeliveryStatus.PENDING,
                            DeliveryRow.updated_at < stale,
                        ),
                        and_(
                            DeliveryRow.lease_until.is_(None),
                            DeliveryRow.status == DeliveryStatus.RETRYING,
                            DeliveryRow.next_attempt_at < late,
                        ),
                    ),
                )
                .order_by(DeliveryRow.id)
                .limit(limit)
            )
        )


def reconcile(context: WorkerContext) -> int:
    """Queue every stranded delivery again; claiming makes a double queue harmless."""
    stranded = find_stranded(context)
    if stranded:
        context.connections.queue_deliveries(stranded)
        log.warning("reconciled", deliveries=len(stranded))
    return len(stranded)
