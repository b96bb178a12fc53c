"""Pausing a handler during an incident: a row in `handler_pauses`, seen by every worker's claim.

While the row exists no delivery of that handler is claimed (`workers.lease.claimable`, checked in the
same SQL that claims, the store job's insert included), so its deliveries wait `pending`, uncharged.
Resume deletes the row and queues the handler's open, unleased deliveries: one job per ordering key
(so keys run in parallel, each in `sent_at` order) and the unordered ones in chunks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from schemas.tables import DeliveryRow, DeliveryStatus, HandlerPauseRow
from workers.shared.connections import Connections


def paused_handlers(engine: Engine) -> set[str]:
    """The names of the paused handlers (registered or not)."""
    with engine.connect() as connection:
        return set(connection.scalars(select(HandlerPauseRow.handler)))


def pause(connections: Connections, handler: str, by: str) -> None:
    """Pause `handler` (idempotent: pausing a paused handler keeps its first pause). Committed on return,
    so every delivery not claimed yet waits."""
    values = {"handler": handler, "paused_by": by[:200], "paused_at": datetime.now(UTC)}
    insert = postgresql.insert if connections.engine.dialect.name == "postgresql" else sqlite.insert
    with connections.transaction() as session:
        session.execute(insert(HandlerPauseRow).values(values).on_conflict_do_nothing())


def resume(connections: Connections, handler: str) -> int:
    """Un-pause `handler` and queue its open, unleased deliveries; returns how many were queued."""
    now = datetime.now(UTC)
    with connections.transaction() as session:
        session.execute(delete(HandlerPauseRow).where(HandlerPauseRow.handler == handler))
        waiting = session.execute(
            select(DeliveryRow.id, DeliveryRow.ordering_key)
            .where(
                DeliveryRow.handler == handler,
                DeliveryRow.status.in_(DeliveryStatus.OPEN),
                or_(DeliveryRow.lease_until.is_(None), DeliveryRow.lease_until < now),
            )
            .order_by(DeliveryRow.id)
        ).all()
    by_key: dict[str | None, list[int]] = {}
    for delivery_id, key in waiting:
        by_key.setdefault(key, []).append(delivery_id)
    for ids in by_key.values():
        connections.queue_deliveries(ids)
    return len(waiting)
