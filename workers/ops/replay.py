"""Replay: re-run handlers on stored events (`POST /v1/events/{id}/replay`, `hookyard replay`).

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
- a bulk replay (`strict=False`) skips named handlers that do not apply to
  an event instead of refusing.

A delivery whose attempt is running right now (an unexpired lease) keeps its
lease and status: it gets the fresh budget, so if that attempt fails it is
retried, but it is not started a second time alongside itself.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from schemas.api import ReplayedDelivery, ReplayResult
from schemas.errors import Invalid
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from workers.registry import Registry
from workers.shared.connections import Connections


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

    def budget(name: str) -> int:
        spec = registry.get(name)
        return (spec.max_attempts if spec and spec.max_attempts else None) or default_max_attempts

    new = [name for name in chosen if name not in existing]
    if new:
        session.add_all(
            DeliveryRow(
                event_id=event.id,
                handler=name,
                status=DeliveryStatus.PENDING,
                attempts=0,
                max_attempts=budget(name),
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
    params: list[dict[str, Any]] = [{"b_id": row.id, "b_budget": budget(row.handler)} for row in rows]
    table = Table(DeliveryRow.__tablename__, DeliveryRow.metadata)  # Core executemany, not ORM bulk
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(max_attempts=table.c.attempts + bindparam("b_budget"), updated_at=now),
        params,
    )
    session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        .values(status=DeliveryStatus.PENDING, next_attempt_at=None, lease_until=None),
        [{"b_id": row.id} for row in rows],
    )
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


def load_event(session: Session, event_id: str) -> EventRow | None:
    return session.scalars(select(EventRow).where(EventRow.id == event_id)).first()


def replay_events(
    session: Session,
    event_ids: Sequence[str],
    registry: Registry,
    default_max_attempts: int,
    *,
    handlers: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
) -> list[Replayed]:
    """Replay several events in one transaction (the CLI's bulk path); handlers that do not apply are skipped."""
    results = []
    for event_id in event_ids:
        event = load_event(session, event_id)
        if event is not None:
            results.append(
                replay_event(
                    session,
                    event,
                    registry,
                    default_max_attempts,
                    handlers=handlers,
                    statuses=statuses,
                    strict=False,
                )
            )
    return results


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def queue_replayed(connections: Connections, replayed: Sequence[Replayed]) -> int:
    """Queue run jobs for replayed deliveries (after the commit); returns how many ids.

    If this fails (Redis away) the deliveries stay `pending` and the workers'
    sweep (`workers.jobs.reconcile`) queues them within about a minute.
    """
    ids = [delivery_id for result in replayed for delivery_id in result.delivery_ids]
    connections.queue_deliveries(ids)
    return len(ids)
