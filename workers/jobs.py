"""The RQ entry points: one event's way through the worker reads top to bottom from here.

- `store_batch(events)`: written by ingest's Lua script (one job per group
  commit): store the events with their deliveries claimed (`workers.store`),
  run them at once in-process (`workers.deliver`), record the outcomes
  (`workers.record`). Two commits per batch, handlers between; the
  worker's heartbeat renews the leases until the second one. Deliveries of
  ordered handlers whose key is busy (on SQLite: all of them) and of paused
  handlers are stored unclaimed and then claimed the usual way, in key order.
- `run_deliveries(ids)`: retries (scheduled with RQ's scheduler), replays and
  the sweeper's recoveries: claim, run and record, group by group.
- `run_replay(replay_id, runner)`: a bulk replay (`POST /v1/replays`), batch
  by batch (`workers.ops.replay`); each slice queues its own continuation.
- `reconcile(context)`: the sweep, run by every worker's maintenance pass and
  by `hookyard reconcile`; it also restarts a bulk replay whose job was lost.

The jobs are idempotent, so RQ may run them again after any failure. While
the database is unreachable a step waits with backoff instead of failing
(`WorkerContext.with_database`); if the worker is asked to stop meanwhile,
the job puts its work back on the queue and returns, so nothing is marked
failed or lost because the database was away.
"""

from __future__ import annotations

from typing import Any

import msgspec
import redis
import structlog
from rq.job import Job
from sqlalchemy import select

from schemas.tables import EventRow
from schemas.wire import QueuedEvent
from workers import deliver, lease, record, store
from workers.context import HandBack, WorkerContext, get_context
from workers.ops.fingerprints import forget_fingerprints, repoint_fingerprints, stored_ids
from workers.ops.replay import requeue_stale_replays, run_replay_slice
from workers.shared import tracing
from workers.shared.defaults import STORE_BATCH, job_options

log = structlog.get_logger("hookyard.jobs")


def store_batch(events: list[Any]) -> int:
    """Store, claim and run: two commits per batch (store + claim, outcomes), handlers between."""
    context = get_context()
    queued = msgspec.convert(events, list[QueuedEvent])
    try:
        with tracing.store_spans([(event.id, event.trace) for event in queued]) as traces:
            stored = context.with_database(store.store_and_claim, context, queued)
        log.info(
            "events_stored",
            events=len(stored.events),
            deliveries=len(stored.claimed),
            event_ids=[e.id for e in queued[:20]],
            request_ids=[e.request_id for e in queued[:20]],
        )
        refused = [e for e in queued if e.id not in stored.events and e.id not in stored.earlier]
        if refused:  # the database already holds these (source, fingerprint)s: Redis had lost them
            _point_fingerprints_at_first_ids(context, refused)
        stale = context.with_database(deliver.stale_of, context, stored.claimed)  # skip_stale; no query without
        outcomes = deliver.run_group(context, stored.claimed, stored.events, traces, stale)
        left: list[int] = []
        if stored.waiting:  # ordered or paused handlers' deliveries: claimed now, each key's chain in order
            ran, left = context.with_database(deliver.run_stored, context, stored, traces)
            outcomes += ran
        blocked = set(left)
        incomplete = {c.event_id for c in stored.waiting if c.id in blocked}  # their events stay `processing`
        done = [o for o in outcomes if o.event_id not in incomplete]
        context.with_database(record.record, context, done, complete=True)
        context.with_database(record.record, context, [o for o in outcomes if o.event_id in incomplete])
        if left:  # blocked by another job's delivery of their key: its end queues them; else try once more
            context.with_database(deliver.run, context, left)
        if stored.earlier:  # this job ran before (its worker died): finish what that run left open
            delivery_ids = context.with_database(store.open_deliveries, context, stored.earlier)
            context.with_database(deliver.run, context, delivery_ids)
    except HandBack:
        context.queue.enqueue(
            STORE_BATCH, queued, at_front=True, **job_options(f"store {len(queued)} event(s)", store=True)
        )
        log.warning("handed_back", events=len(queued))
    return len(queued)


def _point_fingerprints_at_first_ids(context: WorkerContext, refused: list[QueuedEvent]) -> None:
    """The unique (source, fingerprint) constraint had the last word: make Redis agree, so the next
    re-delivery is 200 with the first id. Best effort: the event is stored once either way."""
    try:
        stored = stored_ids(context.connections.engine, [(e.source, e.fingerprint) for e in refused])
        rows = [
            (e.source, e.fingerprint, e.id, first)
            for e in refused
            if (first := stored.get((e.source, e.fingerprint))) is not None and first != e.id
        ]
        moved = repoint_fingerprints(context.redis, rows)
    except Exception as exc:  # noqa: BLE001 - a repair, never a reason to fail the job
        log.warning("fingerprints_not_repointed", error=type(exc).__name__, event_ids=[e.id for e in refused[:20]])
        return
    log.warning(
        "duplicates_refused_by_the_database",
        events=len(refused),
        fingerprints_repointed=moved,
        event_ids=[e.id for e in refused[:20]],
        first_ids=[first for _, _, _, first in rows[:20]],
        request_ids=[e.request_id for e in refused[:20]],
    )


def release_fingerprints(job: Job, connection: redis.Redis, *_exc_info: object) -> None:
    """A store job's RQ `on_failure` (`STORE_JOB_FAILED`): once it is out of retries, its events that never
    reached the database give their fingerprints back, so a vendor's re-delivery is stored (202) instead
    of answered as a duplicate of an id that will never exist. Stored events keep theirs (a re-delivery
    stays a duplicate of the first id); if the database cannot say, every fingerprint goes, and its
    unique (source, fingerprint) constraint is the last word on a re-delivery."""
    if job.retries_left:  # RQ runs it again: it still owns its fingerprints
        return
    queued = msgspec.convert(job.args[0], list[QueuedEvent])
    stored: set[str] = set()
    try:
        engine = get_context().connections.engine
        with engine.connect() as connection_db:
            ids = [event.id for event in queued]
            stored = set(connection_db.scalars(select(EventRow.id).where(EventRow.id.in_(ids))))
    except Exception as exc:  # noqa: BLE001 - no context or no database: the constraint decides
        log.warning("fingerprints_release_unchecked", job_id=job.id, error=type(exc).__name__)
    rows = [(event.id, event.source, event.fingerprint) for event in queued if event.id not in stored]
    released = forget_fingerprints(connection, rows)
    log.warning(
        "fingerprints_released",
        job_id=job.id,
        released=released,
        event_ids=[event_id for event_id, _, _ in rows[:20]],
        request_ids=[event.request_id for event in queued[:20]],
    )


def run_deliveries(delivery_ids: list[int]) -> int:
    """Run the due ones among `delivery_ids` (`deliver.run` claims, runs and records them)."""
    context = get_context()
    try:
        outcomes = context.with_database(deliver.run, context, delivery_ids)
    except HandBack:
        context.connections.queue_deliveries(delivery_ids)
        log.warning("handed_back", deliveries=len(delivery_ids))
        return 0
    return len(outcomes)


def run_replay(replay_id: str, runner: str) -> str:
    """A slice of a bulk replay; `runner` names the one job chain allowed to run it (`workers.ops.replay`)."""
    return run_replay_slice(get_context(), replay_id, runner)


def reconcile(context: WorkerContext) -> int:
    """Queue every stranded delivery again (`lease.find_stranded`: by the database's clock, and never a lease whose
    holder still beats); claiming makes a double queue harmless.
    A bulk replay untouched for `REPLAY_STALE_SECONDS` gets a new runner and job."""
    stranded = lease.find_stranded(context)
    if stranded:
        context.connections.queue_deliveries(stranded)
        log.warning("reconciled", deliveries=len(stranded))
    requeue_stale_replays(context)
    return len(stranded)
