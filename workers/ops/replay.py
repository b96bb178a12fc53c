"""Replay: re-run handlers on stored events (`POST /v1/events/{id}/replay`, `POST /v1/replays`, `hookyard replay`).

Each replayed delivery gets a fresh budget: `max_attempts = attempts +
<the handler's max attempts>`, so its attempt numbers continue and it may
fail as often as a new delivery before it is dead again. It becomes
`pending` with no back-off and no lease, its event `processing`, and its id
is queued for `workers.jobs.run_deliveries`.

Which deliveries:
- named handlers: each must have a delivery on the event or be a registered
  handler matching its action, otherwise `UnknownHandlers`;
- no names: every delivery of the event, plus a new one for each registered
  handler that matches the action but has none yet (a handler added after
  the event arrived). So replaying a `stored` event after deploying a
  handler for it back-fills that handler.
- `statuses` (CLI `--status dead`) keeps only existing deliveries in those
  statuses, and then plans no new ones.
- `strict=False` skips named handlers that do not apply to an event instead
  of refusing.

A delivery whose attempt is running right now (an unexpired lease) keeps its
lease and status: it gets the fresh budget, so if that attempt fails it is
retried, but it is not started a second time alongside itself.

Bulk replays (`POST /v1/replays`) re-run existing deliveries only: the API
freezes the chosen delivery ids in `replay_items` when it creates the
replay, and `advance_replay` (the `run_replay` job, or `hookyard replay`
in-process) applies the same reset to them, `REPLAY_BATCH` at a time, one
transaction per batch that also moves the replay's `position`. A runner that
dies resumes after `position`; a compare-and-set on `(runner, position)`
keeps two runners from doing a batch twice, and the sweep
(`reclaim_stale_replays`) gives a replay whose job was lost a new runner.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import msgspec
import redis
import structlog
from sqlalchemy import Table, case, delete, literal, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from schemas.api import ReplayedDelivery, ReplayResult
from schemas.errors import Invalid
from schemas.tables import (
    DeliveryRow,
    DeliveryStatus,
    EventRow,
    EventStatus,
    ReplayItemRow,
    ReplayRow,
    ReplayStatus,
)
from workers.context import HandBack, WorkerContext
from workers.registry import Registry
from workers.shared.connections import Connections
from workers.shared.defaults import (
    REPLAY_BATCH,
    REPLAY_SLICE_SECONDS,
    REPLAY_STALE_SECONDS,
    RUN_REPLAY,
    job_options,
)

log = structlog.get_logger("hookyard.replay")


class UnknownHandlers(Invalid):
    """A named handler neither ran on the event nor matches its action (400 `VALIDATION:HANDLERS`)."""

    def __init__(self, event_id: str, names: list[str]) -> None:
        super().__init__(
            "HANDLERS", f"no handler named {', '.join(repr(n) for n in names)} applies to event {event_id}"
        )
        self.event_id = event_id
        self.names = names


class Replayed(ReplayResult, kw_only=True):
    """A `ReplayResult` plus the delivery ids to queue."""

    delivery_ids: list[int]


def replay_event(
    session: Session,
    event: EventRow,
    registry: Registry,
    default_max_attempts: int,
    *,
    handlers: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    strict: bool = True,
    now: datetime | None = None,
) -> Replayed:
    """Reset the chosen deliveries of one event inside the caller's transaction.

    `strict`: a named handler that does not apply to the event is an error
    (the API); otherwise it is skipped for that event (bulk replays).
    """
    now = now or datetime.now(UTC)
    rows_now = session.scalars(select(DeliveryRow).where(DeliveryRow.event_id == event.id))
    existing = {row.handler: row for row in rows_now}
    matching = {spec.name for spec in registry.matching(event.action)}
    if handlers is not None:
        unknown = sorted(set(handlers) - set(existing) - matching)
        if unknown and strict:
            raise UnknownHandlers(event.id, unknown)
        chosen = sorted(set(handlers) - set(unknown))
    else:
        chosen = sorted(set(existing) | (matching if statuses is None else set()))
    if statuses is not None:
        chosen = [name for name in chosen if name in existing and existing[name].status in statuses]
    if not chosen:
        return Replayed(event_id=event.id, deliveries=[], delivery_ids=[])

    budgets = handler_budgets(registry, default_max_attempts)
    new = [name for name in chosen if name not in existing]
    if new:
        session.add_all(
            DeliveryRow(
                event_id=event.id,
                handler=name,
                status=DeliveryStatus.PENDING,
                attempts=0,
                max_attempts=budgets.get(name, default_max_attempts),
                created_at=now,
                updated_at=now,
            )
            for name in new
        )
        session.flush()
        existing.update(
            {
                row.handler: row
                for row in session.scalars(
                    select(DeliveryRow).where(DeliveryRow.event_id == event.id, DeliveryRow.handler.in_(new))
                )
            }
        )
    rows = [existing[name] for name in chosen]
    running = {row.id for row in rows if row.lease_until is not None and _aware(row.lease_until) > now}
    reset_deliveries(session, [row.id for row in rows], budgets, default_max_attempts, now)
    session.execute(update(EventRow).where(EventRow.id == event.id).values(status=EventStatus.PROCESSING))
    session.expire_all()
    refreshed = {
        row.id: row for row in session.scalars(select(DeliveryRow).where(DeliveryRow.id.in_([r.id for r in rows])))
    }
    deliveries = [
        ReplayedDelivery(
            handler=row.handler,
            state="running" if row.id in running else "queued",
            new=row.handler in new,
            attempts=refreshed[row.id].attempts,
            max_attempts=refreshed[row.id].max_attempts,
        )
        for row in rows
    ]
    return Replayed(event_id=event.id, deliveries=deliveries, delivery_ids=sorted(refreshed))


def handler_budgets(registry: Registry, default_max_attempts: int) -> dict[str, int]:
    """Each registered handler's `max_attempts` (a replayed delivery's fresh budget); others get the default."""
    return {spec.name: spec.max_attempts or default_max_attempts for spec in registry.all()}


def reset_deliveries(
    session: Session,
    delivery_ids: Sequence[int],
    budgets: Mapping[str, int],
    default_max_attempts: int,
    now: datetime,
) -> int:
    """The replay rule, set-based: a fresh budget for each, and `pending` unless an attempt runs now.

    Returns how many of the deliveries still exist.
    """
    if not delivery_ids:
        return 0
    table = Table(DeliveryRow.__tablename__, DeliveryRow.metadata)  # Core: no ORM session synchronisation
    budget: Any = (
        case(dict(budgets), value=table.c.handler, else_=default_max_attempts)
        if budgets
        else literal(default_max_attempts)
    )
    result = session.execute(
        update(table).where(table.c.id.in_(delivery_ids)).values(max_attempts=table.c.attempts + budget, updated_at=now)
    )
    session.execute(
        update(table)
        .where(table.c.id.in_(delivery_ids), or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        .values(status=DeliveryStatus.PENDING, next_attempt_at=None, lease_until=None)
    )
    return _rowcount(result)


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def load_event(session: Session, event_id: str) -> EventRow | None:
    return session.scalars(select(EventRow).where(EventRow.id == event_id)).first()


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def replay_one(
    connections: Connections,
    registry: Registry,
    default_max_attempts: int,
    event_id: str,
    handlers: Collection[str] | None = None,
) -> tuple[Replayed | None, bool]:
    """Reset one event's deliveries (committed), then queue them: `(None, True)` for an unknown event.

    The flag says whether they were queued now; False means Redis did not take the job and the workers'
    sweep queues them within about a minute.
    """
    with connections.transaction() as session:
        event = load_event(session, event_id)
        if event is None:
            return None, True
        replayed = replay_event(session, event, registry, default_max_attempts, handlers=handlers)
    try:
        queue_replayed(connections, [replayed])
    except (redis.RedisError, OSError):
        return replayed, False
    return replayed, True


def queue_replayed(connections: Connections, replayed: Sequence[Replayed]) -> int:
    """Queue run jobs for replayed deliveries (after the commit); returns how many ids.

    If this fails (Redis away) the deliveries stay `pending` and the workers'
    sweep (`workers.jobs.reconcile`) queues them within about a minute.
    """
    ids = [delivery_id for result in replayed for delivery_id in result.delivery_ids]
    connections.queue_deliveries(ids)
    return len(ids)


# --- bulk replays ------------------------------------------------------------------------------


def new_runner() -> str:
    """A token naming the one job chain allowed to run a replay."""
    return secrets.token_hex(8)


class Batch(msgspec.Struct):
    outcome: Literal["more", "done", "superseded"]
    """`superseded`: another runner owns the replay now (or it is gone); this one stops."""
    delivery_ids: list[int]
    """Reset in this batch, to queue after the commit."""


def replay_batch(
    session: Session,
    replay_id: str,
    runner: str,
    budgets: Mapping[str, int],
    default_max_attempts: int,
    *,
    batch: int = REPLAY_BATCH,
    now: datetime | None = None,
) -> Batch:
    """One batch of a bulk replay, inside the caller's transaction."""
    now = now or datetime.now(UTC)
    replay = session.execute(
        select(ReplayRow.status, ReplayRow.position, ReplayRow.runner).where(ReplayRow.id == replay_id)
    ).first()
    if replay is None or replay.runner != runner:
        return Batch("superseded", [])
    if replay.status == ReplayStatus.DONE:
        return Batch("done", [])
    owned = (ReplayRow.id == replay_id, ReplayRow.runner == runner, ReplayRow.position == replay.position)
    items = session.execute(
        select(ReplayItemRow.delivery_id, ReplayItemRow.event_id)
        .where(ReplayItemRow.replay_id == replay_id, ReplayItemRow.delivery_id > replay.position)
        .order_by(ReplayItemRow.delivery_id)
        .limit(batch)
    ).all()
    if not items:
        finished = session.execute(
            update(ReplayRow).where(*owned).values(status=ReplayStatus.DONE, finished_at=now, updated_at=now)
        )
        if _rowcount(finished) == 0:
            return Batch("superseded", [])
        session.execute(delete(ReplayItemRow).where(ReplayItemRow.replay_id == replay_id))
        return Batch("done", [])
    ids = [item.delivery_id for item in items]
    claimed = session.execute(
        update(ReplayRow).where(*owned).values(position=ids[-1], status=ReplayStatus.RUNNING, updated_at=now)
    )
    if _rowcount(claimed) == 0:  # another runner moved it meanwhile
        return Batch("superseded", [])
    queued = reset_deliveries(session, ids, budgets, default_max_attempts, now)
    events = sorted({item.event_id for item in items})
    session.execute(update(EventRow).where(EventRow.id.in_(events)).values(status=EventStatus.PROCESSING))
    session.execute(update(ReplayRow).where(ReplayRow.id == replay_id).values(queued=ReplayRow.queued + queued))
    return Batch("more", ids)


def advance_replay(
    connections: Connections,
    registry: Registry,
    default_max_attempts: int,
    replay_id: str,
    runner: str,
    *,
    until: float | None = None,
    stopping: threading.Event | None = None,
    retrying: Callable[[Callable[[], Batch]], Batch] = lambda work: work(),
    batch: int = REPLAY_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> Literal["more", "done", "superseded"]:
    """Run batches (each committed, then queued) until the replay is done, this runner is superseded,
    `until` (a `time.monotonic()` deadline) passes or `stopping` is set; `more` means call again.

    `retrying` wraps each transaction (the worker's `with_database` waits out a database outage);
    `on_batch` hears how many deliveries each batch queued (the CLI's progress bar).
    """
    budgets = handler_budgets(registry, default_max_attempts)

    def one() -> Batch:
        with connections.transaction() as session:
            return replay_batch(session, replay_id, runner, budgets, default_max_attempts, batch=batch)

    while True:
        result = retrying(one)
        if result.delivery_ids:
            connections.queue_deliveries(result.delivery_ids)
        if on_batch is not None:
            on_batch(len(result.delivery_ids))
        if result.outcome != "more":
            return result.outcome
        if (until is not None and time.monotonic() >= until) or (stopping is not None and stopping.is_set()):
            return "more"


def reclaim_stale_replays(session: Session, now: datetime | None = None) -> list[tuple[str, str]]:
    """Replays not done whose runner has not touched them for `REPLAY_STALE_SECONDS`: each gets a new
    runner token (the old chain, if it is only slow, then stops); returns (replay id, runner) to queue."""
    now = now or datetime.now(UTC)
    stale = now - timedelta(seconds=REPLAY_STALE_SECONDS)
    found = session.execute(
        select(ReplayRow.id, ReplayRow.updated_at).where(
            ReplayRow.status != ReplayStatus.DONE, ReplayRow.updated_at < stale
        )
    ).all()
    reclaimed = []
    for row in found:
        runner = new_runner()
        moved = session.execute(
            update(ReplayRow)
            .where(ReplayRow.id == row.id, ReplayRow.updated_at == row.updated_at)
            .values(runner=runner, updated_at=now)
        )
        if _rowcount(moved):
            reclaimed.append((row.id, runner))
    return reclaimed


def run_replay_slice(context: WorkerContext, replay_id: str, runner: str) -> str:
    """What the `run_replay` job does: batches for up to `REPLAY_SLICE_SECONDS`, then, if more is left, its
    continuation goes to the front of the queue (see `REPLAY_SLICE_SECONDS`).

    A database outage is waited out; a worker told to stop meanwhile hands the rest back the same way.
    """
    until = time.monotonic() + REPLAY_SLICE_SECONDS
    try:
        outcome = advance_replay(
            context.connections,
            context.registry,
            context.settings.handlers.default_max_attempts,
            replay_id,
            runner,
            until=until,
            stopping=context.stopping,
            retrying=lambda work: context.with_database(work),
        )
    except HandBack:
        outcome = "more"
    if outcome == "more":
        context.queue.enqueue(RUN_REPLAY, replay_id, runner, at_front=True, **job_options(f"replay {replay_id}"))
    log.info("replay_advanced", replay_id=replay_id, outcome=outcome)
    return outcome


def requeue_stale_replays(context: WorkerContext) -> int:
    """The sweep's part for bulk replays: give each replay whose job was lost a new runner, and queue it."""
    with context.connections.transaction() as session:
        reclaimed = reclaim_stale_replays(session)
    for replay_id, runner in reclaimed:
        context.queue.enqueue(RUN_REPLAY, replay_id, runner, **job_options(f"replay {replay_id}"))
        log.warning("replay_requeued", replay_id=replay_id)
    return len(reclaimed)
