"""Bulk replays: plan (dry run), create and read them; the workers run them (`workers.ops.replay`).

One query chooses the deliveries (`ReplaySelection.query`): the dry run
counts it, and creating a replay inserts exactly its rows into
`replay_items` in the same transaction as the replay's record, so the
counts a replay answers with are the rows it then resets and queues.
The event side of the filter is `EventFilter`, so it means what it means
on `/v1/events`; `delivery_status` and `handlers` choose which of those
events' deliveries. Only existing deliveries are replayed: a handler
deployed after an event arrived is back-filled per event
(`POST /v1/events/{id}/replay`), whose count the dry run could not promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis
import structlog
from sqlalchemy import Select, distinct, func, insert, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from schemas.api import BulkReplay, ReplayCounts, ReplayFilter
from schemas.errors import Invalid
from schemas.ids import is_event_id, new_event_id
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, ReplayItemRow, ReplayRow, ReplayStatus
from service.api.filters import EventFilter, parse_status
from workers.ops.replay import new_runner
from workers.shared.connections import Connections
from workers.shared.defaults import RUN_REPLAY, job_options

log = structlog.get_logger("hookyard.replays")

MAX_HANDLER_NAME = 200
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class ReplaySelection:
    events: EventFilter
    delivery_status: str | None = None
    handlers: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, given: ReplayFilter) -> ReplaySelection:
        """Check a replay filter; an empty one is refused (it would replay everything)."""
        if given == ReplayFilter():
            raise Invalid(
                "FILTER", "give at least one filter: source, action, status, delivery_status, handlers, since or until"
            )
        events = EventFilter.parse(
            source=given.source, action=given.action, status=given.status, since=given.since, until=given.until
        )
        delivery_status = None
        if given.delivery_status is not None:
            delivery_status = parse_status(given.delivery_status, DeliveryStatus.ALL, "delivery_status")
        handlers = None
        if given.handlers is not None:
            if not given.handlers:
                raise Invalid("HANDLERS", "handlers: name at least one handler, or leave it out")
            if any(not name or len(name) > MAX_HANDLER_NAME or "\x00" in name for name in given.handlers):
                raise Invalid("HANDLERS", f"handlers: each name is 1 to {MAX_HANDLER_NAME} characters, no NUL")
            handlers = tuple(sorted(set(given.handlers)))
        return cls(events=events, delivery_status=delivery_status, handlers=handlers)

    def query(self, *lead: Any) -> Select[Any]:
        """The chosen deliveries as `(*lead, delivery id, event id)`: what a dry run counts and a replay freezes."""
        query = select(*lead, DeliveryRow.id, DeliveryRow.event_id)
        event_clauses = self.events.clauses()
        if event_clauses:
            query = query.join(EventRow, EventRow.id == DeliveryRow.event_id).where(*event_clauses)
        if self.delivery_status is not None:
            query = query.where(DeliveryRow.status == self.delivery_status)
        if self.handlers is not None:
            query = query.where(DeliveryRow.handler.in_(self.handlers))
        return query

    def describe(self) -> ReplayFilter:
        """The filter as stored with the replay, normalised."""
        events = self.events
        return ReplayFilter(
            source=events.source,
            action=events.action,
            status=events.status,
            delivery_status=self.delivery_status,
            handlers=None if self.handlers is None else list(self.handlers),
            since=None if events.since is None else events.since.isoformat(),
            until=None if events.until is None else events.until.isoformat(),
        )


def count_replay(engine: Engine, selection: ReplaySelection) -> ReplayCounts:
    """The dry run: how many deliveries (and of how many events) the replay would re-run."""
    chosen = selection.query().subquery()
    with engine.connect() as connection:
        row = connection.execute(select(func.count(), func.count(distinct(chosen.c.event_id)))).one()
    return ReplayCounts(events=int(row[1]), deliveries=int(row[0]))


def create_replay(
    engine: Engine, selection: ReplaySelection, *, created_by: str, request_id: str
) -> tuple[BulkReplay, str]:
    """Record the replay and freeze its deliveries, in one transaction; returns it and its runner token.

    A replay that chose nothing is `done` at once and needs no runner.
    """
    replay_id = new_event_id()
    runner = new_runner()
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.add(
            ReplayRow(
                id=replay_id,
                status=ReplayStatus.QUEUED,
                filter=_encode(selection.describe()).decode(),
                events=0,
                deliveries=0,
                queued=0,
                position=0,
                runner=runner,
                created_by=created_by[:200],
                request_id=request_id[:128],
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        session.execute(
            insert(ReplayItemRow).from_select(
                ["replay_id", "delivery_id", "event_id"], selection.query(literal(replay_id))
            )
        )
        deliveries, events = session.execute(
            select(func.count(), func.count(distinct(ReplayItemRow.event_id))).where(
                ReplayItemRow.replay_id == replay_id
            )
        ).one()
        row = session.get_one(ReplayRow, replay_id)
        row.events, row.deliveries = int(events), int(deliveries)
        if not deliveries:
            row.status, row.finished_at = ReplayStatus.DONE, now
        replay = _replay(row)
    return replay, runner


def start_replay(connections: Connections, replay: BulkReplay, runner: str, request_id: str) -> bool:
    """Queue the replay's first job; False if Redis could not take it (the workers' sweep will, later)."""
    if replay.status == ReplayStatus.DONE:
        return True
    try:
        connections.queue.enqueue(RUN_REPLAY, replay.id, runner, **job_options(f"replay {replay.id}"))
    except (redis.RedisError, OSError) as exc:
        log.warning("replay_enqueue_failed", replay_id=replay.id, request_id=request_id, error=type(exc).__name__)
        return False
    return True


def get_replay(engine: Engine, replay_id: str) -> BulkReplay | None:
    if not is_event_id(replay_id):
        return None
    with Session(engine) as session:
        row = session.get(ReplayRow, replay_id)
        return None if row is None else _replay(row)


def _replay(row: ReplayRow) -> BulkReplay:
    return BulkReplay(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]  # one of ReplayStatus.ALL, written only here and by workers
        events=row.events,
        deliveries=row.deliveries,
        queued=row.queued,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
