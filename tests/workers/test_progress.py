"""A worker that dies mid-batch is charged only for the delivery it was running."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from schemas.ids import new_event_id
from schemas.tables import DeliveryRow
from schemas.wire import QueuedEvent
from tests.conftest import Worker, gxm_body
from workers.lease import give_back
from workers.progress import Progress, never_started
from workers.registry import Registry
from workers.store import store_events


def queued(n: int) -> QueuedEvent:
    body = gxm_body(payload={"n": n}, sent_at=1_700_000_000 + n)
    return QueuedEvent(new_event_id(), "gxm", hashlib.sha256(body).hexdigest()[:32], 1, f"r{n}", body.decode())


def test_only_the_running_delivery_keeps_its_attempt(worker: Worker, registry: Registry, tmp_path: Path) -> None:
    registry.handler("*", name="ok")(lambda event: None)
    context = worker.context
    with context.sessions() as session, session.begin():
        stored = store_events(session, [queued(n) for n in range(4)], registry, 5, datetime.now(UTC) + timedelta(60))
    claimed = [(c.id, c.attempts) for c in stored.claimed]
    progress = Progress(tmp_path / "progress")
    progress.claimed(claimed)
    progress.starting(1)  # ...and the process dies here

    left = never_started(tmp_path / "progress")

    assert left == claimed[2:]
    assert give_back(context.engine, left) == 2
    assert give_back(context.engine, left) == 0  # only once: the attempts no longer match
    with context.sessions() as session:
        found = [
            (d.attempts, d.lease_until is None) for d in session.scalars(select(DeliveryRow).order_by(DeliveryRow.id))
        ]
    assert found == [(1, False), (1, False), (0, True), (0, True)]


def test_a_finished_batch_leaves_nothing_to_give_back(tmp_path: Path) -> None:
    progress = Progress(tmp_path / "progress")
    progress.claimed([(1, 1), (2, 1)])
    progress.starting(0)
    progress.starting(1)
    progress.finished()
    assert never_started(tmp_path / "progress") == []
    assert never_started(tmp_path / "missing") == []
