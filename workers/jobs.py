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

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
import structlog
from rq import Queue, Retry
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from schemas.tables import DeliveryRow, DeliveryStatus
from schemas.wire import QueuedEvent
from workers.context import WorkerContext, get_context
from workers.defaults import (
    DB_RETRY_MAX_SECONDS,
    LEASE_GRACE_SECONDS,
    STORE_JOB_RETRIES,
    STORE_JOB_RETRY_INTERVALS,
)
from workers.deliver import DeliveryRunner, Outcome
from workers.handler_metrics import record_outcomes
from workers.store import Stored, open_deliveries, store_events

log = structlog.get_logger("hookyard.jobs")
T = TypeVar("T")

RUN_DELIVERIES = "workers.jobs.run_deliveries"
STORE_BATCH = "workers.jobs.store_batch"
STALE_PENDING_SECONDS = 60.0
"""A `pending` delivery never started this long after it was planned lost its job."""


class HandBack(Exception):
    """The worker is stopping while the database is away: requeue instead of waiting."""


def _database_down(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | DisconnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def with_database(context: WorkerContext, work: Callable[[], T]) -> T:
    """Run `work`, waiting out database outages with capped exponential backoff."""
    delay = 0.5
    while True:
        try:
            return work()
        except Exception as exc:
            if not _database_down(exc):
                raise
            log.warning("database_unavailable", error=type(exc).__name__, retry_in_seconds=delay)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if context.stopping.is_set():
                raise HandBack
            time.sleep(min(0.2, delay))
        delay = min(delay * 2, DB_RETRY_MAX_SECONDS)


def runner_for(context: WorkerContext) -> DeliveryRunner:
    def schedule(ids: list[int], delay: float) -> None:
        enqueue_deliveries(context, ids, delay)

    def record(outcomes: list[Outcome]) -> None:
        record_outcomes(context.redis, outcomes)

    return DeliveryRunner(
        context.sessions,
        context.registry,
        context.settings.handlers,
        schedule,
        on_recorded=record,
        stopping=context.stopping,
        single_statements=context.single_statements,
        progress=context.progress,
    )


def enqueue_deliveries(context: WorkerContext, delivery_ids: list[int], delay: float = 0.0) -> None:
    enqueue_run(context.queue, delivery_ids, delay)


def enqueue_run(queue: Queue, delivery_ids: list[int], delay: float = 0.0) -> None:
    """Queue one `run_deliveries` job (after `delay` seconds, through RQ's scheduler)."""
    options: dict[str, Any] = {
        "job_timeout": -1,
        "result_ttl": 0,
        "retry": Retry(max=STORE_JOB_RETRIES, interval=STORE_JOB_RETRY_INTERVALS),
        "description": f"run {len(delivery_ids)} delivery(ies)",
    }
    if delay > 0:
        # RQ's scheduled registry keeps whole seconds, rounded down: round up so a retry never
        # fires before its backoff is over (it would find the delivery not yet due and skip it).
        due = datetime.now(UTC) + timedelta(seconds=delay)
        due = due.replace(microsecond=0) + timedelta(seconds=1) if due.microsecond else due
        queue.enqueue_at(due, RUN_DELIVERIES, delivery_ids, **options)
    else:
        queue.enqueue(RUN_DELIVERIES, delivery_ids, **options)


def store_batch(events: list[Any]) -> int:
    """Store, claim and run: two commits per batch (store + claim, outcomes), handlers between."""
    context = get_context()
    queued = msgspec.convert(events, list[QueuedEvent])
    settings = context.settings.handlers
    runner = runner_for(context)

    def store() -> tuple[Stored, datetime]:
        lease = runner.lease_until(datetime.now(UTC))
        if context.single_statements is not None:  # one statement (bulk.store_and_claim): atomic as is
            with context.single_statements() as session:
                return store_events(session, queued, context.registry, settings.default_max_attempts, lease), lease
        with context.sessions() as session, session.begin():
            return store_events(session, queued, context.registry, settings.default_max_attempts, lease), lease

    try:
        stored, lease_until = with_database(context, store)
        log.info(
            "events_stored",
            events=len(stored.events),
            deliveries=len(stored.claimed),
            event_ids=[e.id for e in queued[:20]],
            request_ids=[e.request_id for e in queued[:20]],
        )
        outcomes = runner.run_claimed(stored.claimed, stored.events, lease_until)
        if outcomes:
            with_database(context, lambda: runner.record(outcomes, complete=True))
        if stored.earlier:  # this job ran before (its worker died): finish what that run left open
            earlier = stored.earlier

            def reopen() -> list[int]:
                with context.sessions() as session:
                    return open_deliveries(session, earlier)

            delivery_ids = with_database(context, reopen)
            with_database(context, lambda: runner.run(delivery_ids))
    except HandBack:
        context.queue.enqueue(
            STORE_BATCH,
            queued,
            job_timeout=-1,
            result_ttl=0,
            at_front=True,
            retry=Retry(max=STORE_JOB_RETRIES, interval=STORE_JOB_RETRY_INTERVALS),
        )
        log.warning("handed_back", events=len(queued))
    return len(queued)


def run_deliveries(delivery_ids: list[int]) -> int:
    context = get_context()
    runner = runner_for(context)
    try:
        outcomes = with_database(context, lambda: runner.run(delivery_ids))
    except HandBack:
        enqueue_deliveries(context, delivery_ids)
        log.warning("handed_back", deliveries=len(delivery_ids))
        return 0
    return len(outcomes)


def find_stranded(context: WorkerContext, limit: int = 1000) -> list[int]:
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
        for start in range(0, len(stranded), 100):
            enqueue_deliveries(context, stranded[start : start + 100])
        log.warning("reconciled", deliveries=len(stranded))
    return len(stranded)
