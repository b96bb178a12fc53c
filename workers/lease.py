"""Leases: which worker holds a delivery, for how long, and what an expired one means.

A delivery is claimed before its handler runs: `attempts` goes up and a
lease is set in a committed write. So a worker that dies mid-handler
(`kill -9`, OOM, a handler calling `os._exit`) still counts the attempt, and
its expired lease tells the next worker what happened. Deliveries whose last
attempt died that way are "suspect": they run one at a time, so a poison
event can only use up its own attempts, never its neighbours', and goes
`dead` after `max_attempts` instead of crash-looping the worker.

Every rule about leases lives here: their length (the handlers' time limit
plus `LEASE_GRACE_SECONDS`), claiming, renewing a running group's lease, the
fresh/suspect split, the sweep for deliveries nothing will run, and giving
back the claims a dead process never started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, and_, bindparam, literal_column, or_, select, text, true, tuple_, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, HandlerPauseRow
from workers.batch_sql import postgres
from workers.context import WorkerContext
from workers.event import StoredLike
from workers.shared.defaults import LEASE_GRACE_SECONDS, STALE_PENDING_SECONDS, SWEEP_LIMIT


class Claimed(msgspec.Struct, frozen=True):
    """A delivery this worker holds: attempts counted and lease set, committed."""

    id: int
    event_id: str
    handler: str
    attempts: int
    max_attempts: int
    key: str | None = None
    """Its `ordering_key` (claimed by `claim`; the store job's claims have none: their handlers are unordered)."""
    sent_at: int | None = None
    """The event's `sent_at`, with `key`: what `skip_stale` compares and key order follows."""
    received_at: datetime | None = None


def claimable(now: datetime, claiming: Sequence[int] = ()) -> ColumnElement[bool]:
    """A delivery may start: its handler is not paused and its ordering key is free.

    A key is free for a delivery when no other open delivery of its (handler, key) is running (leased)
    and every earlier one — (`sent_at`, `received_at`, id) — is closed, or is claimed by this same
    statement (`claiming`, and itself unleased and due): one job then runs that chain in order, so a
    batch holding several updates of one key claims them in one statement, not one pass each. A dead,
    skipped or succeeded delivery no longer blocks. One `NOT EXISTS` over `ix_deliveries_ordering`.
    """
    other = aliased(DeliveryRow)
    claimed_with_it = and_(
        other.id.in_(claiming),
        or_(other.lease_until.is_(None), other.lease_until < now),
        or_(other.next_attempt_at.is_(None), other.next_attempt_at <= now),
    )
    blocker = (
        select(other.id)
        .where(
            open_keyed(other),
            other.ordering_key == DeliveryRow.ordering_key,
            other.handler == DeliveryRow.handler,
            other.id != DeliveryRow.id,
            or_(
                other.lease_until >= now,
                and_(
                    tuple_(other.ordering_sent_at, other.ordering_received_at, other.id)
                    < tuple_(DeliveryRow.ordering_sent_at, DeliveryRow.ordering_received_at, DeliveryRow.id),
                    ~claimed_with_it if claiming else true(),
                ),
            ),
        )
        .correlate(DeliveryRow)
    )
    return and_(
        DeliveryRow.handler.not_in(select(HandlerPauseRow.handler)),
        or_(DeliveryRow.ordering_key.is_(None), ~blocker.exists()),
    )


def lock_keys(session: Session, handlers: Sequence[str]) -> None:
    """PostgreSQL: take the ordered handlers' key locks for this transaction (`_KEY_LOCKS`)."""
    if handlers and postgres(session):
        session.execute(_KEY_LOCKS, {"handlers": sorted(handlers)})


def open_keyed(row: type[DeliveryRow] | Any) -> ColumnElement[bool]:
    """`ORDERING_OPEN` for `row` (the table or an alias), rendered literally so the partial index applies."""
    return and_(
        row.ordering_key.is_not(None),
        row.status.in_([literal_column("'pending'"), literal_column("'retrying'")]),
    )


def in_key_order(claimed: Sequence[Claimed]) -> list[Claimed]:
    """Unordered deliveries by id, then each key's in (`sent_at`, `received_at`, id) order."""
    return sorted(claimed, key=lambda c: (c.key is not None, c.sent_at or 0, c.received_at or _EPOCH, c.id))


_EPOCH = datetime.fromtimestamp(0, UTC)
_KEY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(hashtext(h)) FROM (SELECT h FROM unnest(CAST(:handlers AS text[])) AS h ORDER BY h) s"
)
"""PostgreSQL: claims of one ordered handler take turns, so each sees the leases the one before committed
(READ COMMITTED gives the next statement a fresh snapshot); without it two workers could each claim one
delivery of the same key at once."""


def handler_timeout(context: WorkerContext, handler: str) -> float:
    """A handler's time limit in seconds: its own, else `[handlers] timeout_seconds`."""
    spec = context.registry.get(handler)
    return (spec.timeout_seconds if spec else None) or context.settings.handlers.timeout_seconds


def lease_seconds(context: WorkerContext, handlers: Sequence[str]) -> float:
    """One handler's worst case plus grace; `keep` extends it while a group runs."""
    default = context.settings.handlers.timeout_seconds
    worst = max((handler_timeout(context, name) for name in handlers), default=default)
    return worst + LEASE_GRACE_SECONDS


def new_lease(context: WorkerContext, now: datetime) -> datetime:
    """The lease of deliveries claimed as they are stored: any registered handler's worst case."""
    return now + timedelta(seconds=lease_seconds(context, [spec.name for spec in context.registry.all()]))


def partition(context: WorkerContext, delivery_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Fresh ones in id order; suspects fewest attempts first, newest first among equals.

    A crashed group ran in id order, so the deliveries after the culprit
    never started: newest first runs them before the culprit can crash
    the worker again, and a culprit that did crash again (one more
    attempt) then waits behind every neighbour.
    """
    with context.sessions() as session:
        rows = session.execute(
            select(DeliveryRow.id, DeliveryRow.lease_until, DeliveryRow.attempts).where(
                DeliveryRow.id.in_(delivery_ids)
            )
        ).all()
    fresh = sorted(row.id for row in rows if row.lease_until is None)
    suspect = [row.id for row in sorted(rows, key=lambda r: (r.attempts, -r.id)) if row.lease_until is not None]
    return fresh, suspect


def claim(
    context: WorkerContext, delivery_ids: list[int], known: Mapping[str, StoredLike] | None = None
) -> tuple[list[Claimed], dict[str, StoredLike], datetime]:
    """Claim the due, unleased ones among `delivery_ids`; returns them (`in_key_order`), their events and
    the lease's end. `known`: events the caller holds already (the store job's), not read again.

    The `UPDATE ... RETURNING` is the claim: only one worker's update finds a
    delivery open, due and unleased, so a delivery queued twice runs once. The
    same statement leaves a paused handler's deliveries and those waiting for
    their ordering key (`claimable`).
    """
    now = datetime.now(UTC)
    with context.sessions() as session:
        planned = session.execute(
            select(DeliveryRow.handler, DeliveryRow.ordering_key).where(DeliveryRow.id.in_(delivery_ids))
        ).all()
    lease = timedelta(seconds=lease_seconds(context, [row.handler for row in planned]))
    ordered = sorted({row.handler for row in planned if row.ordering_key is not None})
    with context.connections.transaction() as session:
        lock_keys(session, ordered)
        claimed_rows = session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.id.in_(delivery_ids),
                DeliveryRow.status.in_(DeliveryStatus.OPEN),
                or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= now),
                or_(DeliveryRow.lease_until.is_(None), DeliveryRow.lease_until < now),
                claimable(now, delivery_ids if ordered else ()),
            )
            .values(
                attempts=DeliveryRow.attempts + 1,
                lease_until=now + lease,
                last_started_at=now,
                updated_at=now,
            )
            .returning(
                DeliveryRow.id,
                DeliveryRow.event_id,
                DeliveryRow.handler,
                DeliveryRow.attempts,
                DeliveryRow.max_attempts,
                DeliveryRow.ordering_key,
                DeliveryRow.ordering_sent_at,
                DeliveryRow.ordering_received_at,
            )
        ).all()
        claimed = in_key_order(
            [
                Claimed(
                    r.id,
                    r.event_id,
                    r.handler,
                    r.attempts,
                    r.max_attempts,
                    r.ordering_key,
                    r.ordering_sent_at,
                    r.ordering_received_at,
                )
                for r in claimed_rows
            ]
        )
        known = known or {}
        events: dict[str, StoredLike] = {c.event_id: known[c.event_id] for c in claimed if c.event_id in known}
        missing = {c.event_id for c in claimed} - set(events)
        if missing:
            events.update({row.id: row for row in session.scalars(select(EventRow).where(EventRow.id.in_(missing)))})
    return claimed, events, now + lease


def keep(
    context: WorkerContext, group: Sequence[Claimed], remaining: Sequence[Claimed], lease_until: datetime
) -> datetime:
    """Extend the whole group's lease before a handler that could outlive it; returns the lease's end.

    The whole group, not only what is left: finished deliveries are recorded at the end of the
    group, and an expired lease would let the sweeper run them again.
    """
    now = datetime.now(UTC)
    if now + timedelta(seconds=handler_timeout(context, remaining[0].handler) + 1.0) < lease_until:
        return lease_until
    extended = now + timedelta(seconds=lease_seconds(context, [c.handler for c in remaining]))
    with context.connections.transaction() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_([c.id for c in group]), DeliveryRow.status.in_(DeliveryStatus.OPEN))
            .values(lease_until=extended)
        )
    return extended


def find_stranded(context: WorkerContext, limit: int = SWEEP_LIMIT) -> list[int]:
    """Open deliveries that nothing will run: their worker died, or their job was lost.

    Not those only waiting: a paused handler's (resume queues them) or one behind an earlier delivery of
    its ordering key (recording that one queues it); they would fill every sweep and run nothing."""
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
                    claimable(now),
                )
                .order_by(DeliveryRow.id)
                .limit(limit)
            )
        )


def give_back(engine: Engine, items: Sequence[tuple[int, int]]) -> int:
    """Return the attempt and release the lease of deliveries claimed but never started.

    The supervisor calls it when a child died, with `progress.never_started`;
    the attempts must still match, so it gives back once however often it runs.
    """
    if not items:
        return 0
    statement = (
        update(DeliveryRow)
        .where(
            DeliveryRow.id == bindparam("b_id"),
            DeliveryRow.attempts == bindparam("b_attempts"),
            DeliveryRow.lease_until.is_not(None),
            or_(*(DeliveryRow.status == status for status in DeliveryStatus.OPEN)),  # no IN in executemany
        )
        .values(attempts=DeliveryRow.attempts - 1, lease_until=None)
    )
    with engine.begin() as connection:
        result = connection.execute(statement, [{"b_id": i, "b_attempts": a} for i, a in items])
    return int(result.rowcount or 0)
