"""Record what attempts came to: delivery outcomes, their events' statuses, retries, handler metrics.

An outcome is written only over the attempt it belongs to, and only while
the delivery is open, so a late writer (a worker that outlived its lease)
can never overwrite a newer result. Outcomes and the statuses of their
events are one transaction; on PostgreSQL, for a batch just stored and run
(`complete`), one statement. An event's status is rolled up only from
outcomes actually written: one guarded out (another worker took the
delivery over) makes its event's status come from the rows instead. The
leases are released (`workers.lease.Holdings`) only once that commit is
done. Retries are queued only after it, through RQ's scheduler. A delivery
that goes dead emits hookyard's own event in the same transaction
(`workers.own_events`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Table, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from workers.batch_sql import Columns, arrays, names, postgres, unnest
from workers.context import WorkerContext
from workers.handler_metrics import record_outcomes
from workers.lease import db_now, open_keyed
from workers.own_events import emit_dead
from workers.shared.defaults import MAX_ERROR_CHARS


class Outcome(msgspec.Struct, frozen=True):
    """What one attempt of one delivery came to (`workers.deliver` decides it)."""

    delivery_id: int
    event_id: str
    handler: str
    status: str
    error: str | None
    duration_ms: float | None
    next_attempt_at: datetime | None = None
    attempt: int = 0
    """The attempt number this outcome belongs to: a stale writer cannot overwrite a newer one."""
    refund: bool = False
    """The attempt never really ran (handler not on this worker, worker stopping, skipped): don't charge it."""
    key: str | None = None
    """The delivery's ordering key: once it is closed, the next delivery of that key is queued."""
    mismatch: bool = False
    """The payload did not convert to the handler's `payload=` Struct (`hookyard_payload_mismatch_total`)."""


OUTCOME_COLUMNS: Columns = (
    ("id", "bigint"),
    ("status", "varchar"),
    ("last_error", "text"),
    ("next_attempt_at", "timestamptz"),
    ("last_duration_ms", "float8"),
    ("attempt", "integer"),
    ("refund", "integer"),
)
"""An outcome is written only over the attempt it belongs to (`attempt`), and only while the
delivery is open: a late writer can never overwrite a newer result. `refund` gives back an
attempt that never ran. Every other column is copied onto the delivery."""
_OUTCOME_GUARDS = ("id", "attempt", "refund")
_WRITTEN = [name for name, _ in OUTCOME_COLUMNS if name not in _OUTCOME_GUARDS]

_PG_OUTCOME_SET = (
    "UPDATE deliveries AS d SET "  # noqa: S608 - built from the constant column list; values are bound
    + ", ".join(f"{name} = u.{name}" for name in _WRITTEN)
    + ", attempts = d.attempts - u.refund, lease_until = NULL, lease_owner = NULL, updated_at = statement_timestamp() "
    f"FROM {unnest(OUTCOME_COLUMNS)} AS u({names(OUTCOME_COLUMNS)}) "
    "WHERE d.id = u.id AND d.attempts = u.attempt AND d.status IN ('pending', 'retrying')"
)
_PG_OUTCOMES = text(_PG_OUTCOME_SET)
_PG_RECORD_COMPLETE = text(
    "WITH o AS (" + _PG_OUTCOME_SET + " RETURNING d.event_id), "  # noqa: S608 - constants only, values are bound
    "n AS (SELECT event_id, count(*) AS written FROM o GROUP BY event_id) "
    "UPDATE events AS e SET status = s.status FROM unnest(CAST(:e_id AS varchar[]), "
    "CAST(:e_status AS varchar[]), CAST(:e_outcomes AS integer[])) AS s(id, status, outcomes) "
    "JOIN n ON n.event_id = s.id AND n.written = s.outcomes WHERE e.id = s.id RETURNING e.id"
)
"""Outcomes plus the statuses of their events in ONE statement: atomic by itself. An event's status is
set only if every one of its outcomes was written; the ids it returns are those events."""
_PG_STATUS = text("UPDATE events SET status = :status WHERE id = ANY(CAST(:ids AS varchar[]))")


def record(context: WorkerContext, outcomes: list[Outcome], complete: bool = False, mine: Collection[int] = ()) -> None:
    """Write outcomes and event statuses in one transaction, then count them, schedule retries and
    queue the next delivery of each ordering key closed now (`wake`; not those in `mine`, which the
    caller claims itself).

    `complete`: the outcomes hold every delivery of their events (events
    stored by this run), so event statuses follow without a query.
    """
    if not outcomes:
        return
    now = datetime.now(UTC)
    rows = [
        {
            "id": o.delivery_id,
            "status": o.status,
            "last_error": None if o.error is None else o.error[:MAX_ERROR_CHARS],
            "next_attempt_at": o.next_attempt_at,
            "last_duration_ms": o.duration_ms,
            "attempt": o.attempt,
            "refund": 1 if o.refund else 0,
        }
        for o in outcomes
    ]
    own: list[int] = []
    event_ids = {o.event_id for o in outcomes}
    # A dead delivery's own event is written with its outcome, in one transaction: no one-statement path.
    fast = complete and not any(o.status == DeliveryStatus.DEAD for o in outcomes)
    if fast:
        with context.connections.one_statement() as session:  # PostgreSQL: atomic without BEGIN/COMMIT
            event_ids -= _write_complete(session, rows, outcomes)
    if event_ids:  # not `fast`, or some outcomes guarded out: roll up from the rows themselves
        with context.connections.transaction() as session:
            lock_events(session, event_ids)
            if not fast:
                own = emit_dead(session, context, outcomes)
                _write_outcomes(session, rows)
            refresh_event_status(session, event_ids)
    context.leases.release(o.delivery_id for o in outcomes)
    record_outcomes(context.redis, outcomes)
    if own:
        context.connections.queue_deliveries(own)
    later = [o for o in outcomes if o.status in DeliveryStatus.OPEN and o.next_attempt_at]
    for outcome in later:
        assert outcome.next_attempt_at is not None
        delay = max((outcome.next_attempt_at - now).total_seconds(), 0.0)
        context.connections.queue_deliveries([outcome.delivery_id], delay)
    wake(context, [o for o in outcomes if o.key is not None and o.status not in DeliveryStatus.OPEN], mine)


def wake(context: WorkerContext, closed: Sequence[Outcome], mine: Collection[int] = ()) -> list[int]:
    """Queue the first open delivery of each (handler, key) whose delivery just closed, if nothing holds it.

    One query (a window over `ix_deliveries_ordering`) for the whole batch; runs after the commit, so a
    delivery whose claim found the closed one still open is always seen here.
    """
    if not closed:
        return []
    pairs = {(o.handler, o.key) for o in closed}
    first = (
        select(
            DeliveryRow.id,
            DeliveryRow.handler,
            DeliveryRow.ordering_key,
            DeliveryRow.lease_until,
            DeliveryRow.next_attempt_at,
            func.row_number()
            .over(
                partition_by=(DeliveryRow.handler, DeliveryRow.ordering_key),
                order_by=(DeliveryRow.ordering_sent_at, DeliveryRow.ordering_received_at, DeliveryRow.id),
            )
            .label("rank"),
        )
        .where(
            open_keyed(DeliveryRow),
            DeliveryRow.ordering_key.in_({key for _, key in pairs}),
            DeliveryRow.handler.in_({handler for handler, _ in pairs}),
        )
        .subquery()
    )
    now = datetime.now(UTC)
    with context.sessions() as session:
        found = session.execute(select(first).where(first.c.rank == 1)).all()
    due = [
        row.id
        for row in found
        if (row.handler, row.ordering_key) in pairs
        and row.id not in mine
        and (row.lease_until is None or row.lease_until < now)
        and (row.next_attempt_at is None or row.next_attempt_at <= now)
    ]
    if due:
        context.connections.queue_deliveries(sorted(due))
    return due


def _write_complete(session: Session, rows: Sequence[dict[str, Any]], outcomes: Sequence[Outcome]) -> set[str]:
    """Outcomes plus the statuses of their events; on PostgreSQL one statement, atomic by itself.

    Returns the events whose status was set: those all of whose outcomes were written.
    """
    status_of = statuses_of(outcomes)
    if not postgres(session):
        if _write_outcomes(session, rows) != len(rows):
            return set()  # some guarded out; SQLite cannot say which: every event is rolled up from its rows
        for status in set(status_of.values()):
            _set_status(session, status, [event_id for event_id, s in status_of.items() if s == status])
        return set(status_of)
    counts = Counter(o.event_id for o in outcomes)
    params: dict[str, Any] = arrays(rows, OUTCOME_COLUMNS)
    params.update({"e_id": list(status_of), "e_status": list(status_of.values())})
    params["e_outcomes"] = [counts[event_id] for event_id in status_of]
    return {str(event_id) for event_id in session.scalars(_PG_RECORD_COMPLETE, params)}


def _write_outcomes(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Set each delivery's outcome (keys of OUTCOME_COLUMNS) and release its lease; returns how many were written."""
    if not rows:
        return 0
    if postgres(session):
        result = session.execute(_PG_OUTCOMES, arrays(rows, OUTCOME_COLUMNS))
        return int(getattr(result, "rowcount", 0) or 0)
    table = cast(Table, DeliveryRow.__table__)
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.attempts == bindparam("b_attempt"),
            # `IN (...)` expands per statement, which executemany cannot do.
            or_(table.c.status == "pending", table.c.status == "retrying"),
        )
        .values(
            **{name: bindparam(f"b_{name}") for name in _WRITTEN},
            attempts=table.c.attempts - bindparam("b_refund"),
            lease_until=None,
            lease_owner=None,
            updated_at=db_now(),
        )
    )
    result = session.execute(statement, [{f"b_{name}": row[name] for name, _ in OUTCOME_COLUMNS} for row in rows])
    return int(getattr(result, "rowcount", 0) or 0)


def _set_status(session: Session, status: str, event_ids: Sequence[str]) -> None:
    if not event_ids:
        return
    if postgres(session):
        session.execute(_PG_STATUS, {"status": status, "ids": list(event_ids)})
        return
    session.execute(update(EventRow).where(EventRow.id.in_(event_ids)).values(status=status))


_DONE = frozenset({DeliveryStatus.SUCCEEDED, DeliveryStatus.SKIPPED})


def event_status(statuses: set[str]) -> str:
    """failed if any delivery is dead, processed if all succeeded or were skipped, else processing."""
    if not statuses:
        return EventStatus.STORED
    if DeliveryStatus.DEAD in statuses:
        return EventStatus.FAILED
    if statuses <= _DONE:
        return EventStatus.PROCESSED
    return EventStatus.PROCESSING


def statuses_of(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """Event statuses from outcomes that are all of their events' deliveries, IF all of them were written
    (`_write_complete` checks that; otherwise `refresh_event_status` reads the rows)."""
    seen: dict[str, set[str]] = {}
    for outcome in outcomes:
        seen.setdefault(outcome.event_id, set()).add(outcome.status)
    return {event_id: event_status(statuses) for event_id, statuses in seen.items()}


def lock_events(session: Session, event_ids: set[str]) -> None:
    """Serialise status roll-ups per event (PostgreSQL row locks; SQLite has one writer anyway).

    Without it two workers finishing two deliveries of one event under READ COMMITTED
    each see the other's as still open and both write `processing`.
    """
    if event_ids and postgres(session):
        session.execute(select(EventRow.id).where(EventRow.id.in_(event_ids)).order_by(EventRow.id).with_for_update())


def refresh_event_status(session: Session, event_ids: set[str]) -> None:
    """Roll the events' statuses up from all their deliveries (`event_status`)."""
    if not event_ids:
        return
    counts: dict[str, dict[str, int]] = {event_id: {} for event_id in event_ids}
    for event_id, status, count in session.execute(
        select(DeliveryRow.event_id, DeliveryRow.status, func.count())
        .where(DeliveryRow.event_id.in_(event_ids))
        .group_by(DeliveryRow.event_id, DeliveryRow.status)
    ):
        counts[event_id][status] = count
    by_status: dict[str, list[str]] = {}
    for event_id, statuses in counts.items():
        by_status.setdefault(event_status(set(statuses)), []).append(event_id)
    for status, ids in by_status.items():
        _set_status(session, status, ids)
