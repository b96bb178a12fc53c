"""Leases: which worker holds a delivery, for how long, and what an expired one means.

A delivery is claimed before its handler runs: `attempts` goes up and a
lease is set in a committed write. So a worker that dies mid-handler
(`kill -9`, OOM, a handler calling `os._exit`) still counts the attempt, and
its expired lease tells the next worker what happened. Deliveries whose last
attempt died that way are "suspect": they run one at a time, so a poison
event can only use up its own attempts, never its neighbours', and goes
`dead` after `max_attempts` instead of crash-looping the worker.

A lease is held from its claim until its outcome is COMMITTED, not only
while its handler runs: the worker's heartbeat renews every lease it holds
(`renew`, from a thread, so a slow outcome write cannot let one lapse) and
refreshes a short-lived key in Redis naming the holder (`beat`). Each lease
records its holder (`deliveries.lease_owner`: the worker's name plus a token
per job run), and the sweep and `claim` leave alone an expired lease whose
holder still beats: a database stall that blocks even the renewal, or a
clock step, cannot hand a running or finished attempt to another worker. A
holder that is gone (killed, or its job ended) stops beating and loses its
leases within `3 x heartbeat_seconds`, as before.

Lease times are the DATABASE's clock (`db_now`), both when a lease is set
and when one is judged expired, so a worker host whose clock is off can
neither shorten nor lengthen a lease.

Every rule about leases lives here: their length (the handlers' time limit
plus `LEASE_GRACE_SECONDS`), claiming, renewing and holding, the
fresh/suspect split, the sweep for deliveries nothing will run, and giving
back the claims a dead process never started.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import Float, and_, bindparam, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, UTCDateTime
from workers.shared.defaults import LEASE_GRACE_SECONDS, STALE_PENDING_SECONDS, SWEEP_LIMIT

if TYPE_CHECKING:
    import redis

    from workers.context import WorkerContext

HOLDER_KEY = "hookyard:lease-holder:"
"""Prefix of the Redis key a lease holder refreshes while it lives (`beat`); the holder's name follows."""


class db_now(FunctionElement[datetime]):
    """The database's clock plus `seconds`, as SQL: every lease is set and judged by ONE clock.

    PostgreSQL: `statement_timestamp()` (timestamptz). SQLite: `strftime(...)` in
    the text form SQLAlchemy stores `DateTime` in (microseconds, UTC), so the
    text comparison with a stored time is a time comparison.
    """

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(bindparam(None, float(seconds), type_=Float()))


@compiles(db_now, "postgresql")
def _db_now_postgres(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(statement_timestamp() + make_interval(secs => CAST({compiler.process(element.clauses, **kw)} AS float8)))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    offset = compiler.process(element.clauses, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.6f seconds', {offset})) || '000')"


def holder_key(owner: str) -> str:
    return HOLDER_KEY + owner


class Holdings:
    """The leases this process holds, by delivery id (their handlers), from claim to committed outcome.

    Shared by the job's thread (claims, records) and the heartbeat threads
    (renewals), hence the lock. `begin` starts a new holder name for each job
    run, so leases a failed run left behind stop being renewed and expire.
    """

    def __init__(self, worker: str | None = None) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, str] = {}
        self.owner = self._name(worker)

    @staticmethod
    def _name(worker: str | None) -> str:
        base = worker or f"{socket.gethostname()}:{os.getpid()}"
        return f"{base[:90]}/{secrets.token_hex(4)}"  # fits `deliveries.lease_owner`

    def begin(self, worker: str) -> str:
        with self._lock:
            self._held.clear()
            self.owner = self._name(worker)
            return self.owner

    def hold(self, claimed: Iterable[Claimed]) -> None:
        with self._lock:
            self._held.update((c.id, c.handler) for c in claimed)

    def release(self, delivery_ids: Iterable[int]) -> None:
        with self._lock:
            for delivery_id in delivery_ids:
                self._held.pop(delivery_id, None)

    def held(self) -> tuple[str, dict[int, str]]:
        """(holder name, {delivery id: handler}) as of now."""
        with self._lock:
            return self.owner, dict(self._held)


class Claimed(msgspec.Struct, frozen=True):
    """A delivery this worker holds: attempts counted and lease set, committed."""

    id: int
    event_id: str
    handler: str
    attempts: int
    max_attempts: int


def handler_timeout(context: WorkerContext, handler: str) -> float:
    """A handler's time limit in seconds: its own, else `[handlers] timeout_seconds`."""
    spec = context.registry.get(handler)
    return (spec.timeout_seconds if spec else None) or context.settings.handlers.timeout_seconds


def lease_seconds(context: WorkerContext, handlers: Sequence[str]) -> float:
    """One handler's worst case plus grace; `keep` extends it while a group runs."""
    default = context.settings.handlers.timeout_seconds
    worst = max((handler_timeout(context, name) for name in handlers), default=default)
    return worst + LEASE_GRACE_SECONDS


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


def claim(context: WorkerContext, delivery_ids: list[int]) -> tuple[list[Claimed], dict[str, EventRow]]:
    """Claim the due, unleased ones among `delivery_ids` for this process; returns them and their events.

    The `UPDATE ... RETURNING` is the claim: only one worker's update finds a
    delivery open, due and unleased, so a delivery queued twice runs once. A
    lease counts as free once expired by the database's clock AND its holder
    no longer beats (`live_holders`). The claims are held (`Holdings`) until
    their outcomes are recorded.
    """
    with context.sessions() as session:
        candidates = session.execute(
            select(DeliveryRow.handler, DeliveryRow.lease_owner).where(DeliveryRow.id.in_(delivery_ids))
        ).all()
    lease = lease_seconds(context, [row.handler for row in candidates])
    live = live_holders(context.redis, {row.lease_owner for row in candidates if row.lease_owner})
    expired = DeliveryRow.lease_until < db_now()
    owner = context.leases.owner
    with context.connections.transaction() as session:
        claimed_rows = session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.id.in_(delivery_ids),
                DeliveryRow.status.in_(DeliveryStatus.OPEN),
                or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= db_now()),
                or_(
                    DeliveryRow.lease_until.is_(None),
                    and_(expired, DeliveryRow.lease_owner.not_in(live)) if live else expired,
                ),
            )
            .values(
                attempts=DeliveryRow.attempts + 1,
                lease_until=db_now(lease),
                lease_owner=owner,
                last_started_at=db_now(),
                updated_at=db_now(),
            )
            .returning(
                DeliveryRow.id,
                DeliveryRow.event_id,
                DeliveryRow.handler,
                DeliveryRow.attempts,
                DeliveryRow.max_attempts,
            )
        ).all()
        claimed = sorted(
            (Claimed(r.id, r.event_id, r.handler, r.attempts, r.max_attempts) for r in claimed_rows),
            key=lambda c: c.id,
        )
        event_ids = {c.event_id for c in claimed}
        events = (
            {row.id: row for row in session.scalars(select(EventRow).where(EventRow.id.in_(event_ids)))}
            if event_ids
            else {}
        )
    context.leases.hold(claimed)
    return claimed, events


def renew_every(context: WorkerContext) -> float:
    """Seconds between renewals: every heartbeat, or often enough that the shortest lease is renewed twice."""
    timeouts = [handler_timeout(context, spec.name) for spec in context.registry.all()]
    shortest = min(timeouts, default=context.settings.handlers.timeout_seconds) + LEASE_GRACE_SECONDS
    return min(float(context.settings.worker.heartbeat_seconds), shortest / 2)


def renew(context: WorkerContext) -> int:
    """Extend every lease this process holds to a full lease from now (database clock); the heartbeat calls it.

    Held leases, not only running ones: finished deliveries keep their lease
    until their outcome is committed, and an expired one would let the sweep
    run them again. Only rows still leased to this holder are touched, so a
    renewal that lands after the outcome (or after another worker's claim)
    changes nothing.
    """
    owner, held = context.leases.held()
    if not held:
        return 0
    with context.connections.one_statement() as session:
        result = session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.id.in_(list(held)),
                DeliveryRow.lease_owner == owner,
                DeliveryRow.lease_until.is_not(None),
                DeliveryRow.status.in_(DeliveryStatus.OPEN),
            )
            .values(lease_until=db_now(lease_seconds(context, list(set(held.values())))))
        )
    return int(getattr(result, "rowcount", 0) or 0)


def beat(context: WorkerContext, owner: str) -> None:
    """Say in Redis that `owner` lives, for `3 x heartbeat_seconds` (RQ's own heartbeat TTL for a job)."""
    ttl = max(math.ceil(3 * context.settings.worker.heartbeat_seconds), 1)
    context.redis.set(holder_key(owner), b"1", ex=ttl)


def live_holders(client: redis.Redis, owners: set[str]) -> set[str]:
    """Those of `owners` whose heartbeat key is still in Redis: their leases are not up for grabs."""
    if not owners:
        return set()
    ordered = sorted(owners)
    values = client.mget([holder_key(owner) for owner in ordered])
    return {owner for owner, value in zip(ordered, values, strict=True) if value is not None}


def find_stranded(context: WorkerContext, limit: int = SWEEP_LIMIT) -> list[int]:
    """Open deliveries that nothing will run: their worker died, or their job was lost.

    By the database's clock; an expired lease whose holder still beats is not stranded (a stalled
    outcome write, or a holder whose renewals cannot get through): it is left to its holder.
    """
    with context.sessions() as session:
        rows = session.execute(
            select(DeliveryRow.id, DeliveryRow.lease_owner, DeliveryRow.lease_until)
            .where(
                DeliveryRow.status.in_(DeliveryStatus.OPEN),
                or_(
                    DeliveryRow.lease_until < db_now(),
                    and_(
                        DeliveryRow.lease_until.is_(None),
                        DeliveryRow.status == DeliveryStatus.PENDING,
                        DeliveryRow.updated_at < db_now(-STALE_PENDING_SECONDS),
                    ),
                    and_(
                        DeliveryRow.lease_until.is_(None),
                        DeliveryRow.status == DeliveryStatus.RETRYING,
                        DeliveryRow.next_attempt_at < db_now(-(LEASE_GRACE_SECONDS + STALE_PENDING_SECONDS)),
                    ),
                ),
            )
            .order_by(DeliveryRow.id)
            .limit(limit)
        ).all()
    live = live_holders(context.redis, {row.lease_owner for row in rows if row.lease_until and row.lease_owner})
    return [row.id for row in rows if not (row.lease_until is not None and row.lease_owner in live)]


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
        .values(attempts=DeliveryRow.attempts - 1, lease_until=None, lease_owner=None)
    )
    with engine.begin() as connection:
        result = connection.execute(statement, [{"b_id": i, "b_attempts": a} for i, a in items])
    return int(result.rowcount or 0)
