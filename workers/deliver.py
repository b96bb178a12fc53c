"""Run deliveries: claim, run each handler isolated and time-limited, record, retry.

A delivery is claimed before its handler runs: `attempts` goes up and a
lease is set in a committed transaction. So a worker that dies mid-handler
(`kill -9`, OOM, a handler calling `os._exit`) still counts the attempt, and
its expired lease tells the next worker what happened. Deliveries whose last
attempt died that way are "suspect": they run one at a time, so a poison
event can only use up its own attempts, never its neighbours', and goes
`dead` after `max_attempts` instead of crash-looping the worker.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from schemas.settings import HandlerSettings
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from workers.bulk import record_complete, record_outcomes, set_status
from workers.event import Event, PermanentError
from workers.progress import Progress
from workers.registry import HandlerSpec, Registry
from workers.shared.defaults import HANDLER_MISSING_RETRY_SECONDS, LEASE_GRACE_SECONDS, MAX_ERROR_CHARS
from workers.store import Claimed, StoredEvent

log = structlog.get_logger("hookyard.deliver")

_decode_payload = msgspec.json.Decoder(dict[str, Any]).decode


class HandlerTimeout(Exception):
    """The handler ran past its time limit."""


class Outcome(msgspec.Struct, frozen=True):
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
    """The attempt never really ran (handler not on this worker, worker stopping): don't charge it."""


def backoff_seconds(attempt: int, settings: HandlerSettings) -> float:
    """base * 2**(attempt-1), capped, with +-20 % jitter so retries do not stampede."""
    delay = min(settings.retry_base_seconds * 2 ** max(attempt - 1, 0), settings.retry_max_seconds)
    return float(min(delay * random.uniform(0.8, 1.2), settings.retry_max_seconds))  # noqa: S311


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt sync handler code after `seconds` (SIGALRM; main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        raise HandlerTimeout(f"handler exceeded its {seconds:g} s time limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class DeliveryRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: Registry,
        settings: HandlerSettings,
        schedule_retry: Callable[[list[int], float], None],
        worker_name: str = "",
        single_statements: sessionmaker[Session] | None = None,
        progress: Progress | None = None,
        on_recorded: Callable[[list[Outcome]], None] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.settings = settings
        self.schedule_retry = schedule_retry
        self.worker_name = worker_name
        self.single_statements = single_statements
        """Autocommit sessions (PostgreSQL) for writes done in one statement, or None."""
        self.progress = progress or Progress(None)
        self.on_recorded = on_recorded
        """Called after each batch of outcomes is committed (handler metrics)."""
        self.stopping = stopping or threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, delivery_ids: Sequence[int]) -> list[Outcome]:
        """Run the due ones among `delivery_ids`; fresh ones together, suspect ones singly."""
        if not delivery_ids:
            return []
        fresh, suspect = self._partition(delivery_ids)
        outcomes = self._run_group(fresh)
        for delivery_id in suspect:
            outcomes += self._run_group([delivery_id])
        return outcomes

    def _partition(self, delivery_ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """Fresh ones in id order; suspects fewest attempts first, newest first among equals.

        A crashed group ran in id order, so the deliveries after the culprit
        never started: newest first runs them before the culprit can crash
        the worker again, and a culprit that did crash again (one more
        attempt) then waits behind every neighbour.
        """
        with self.sessions() as session:
            rows = session.execute(
                select(DeliveryRow.id, DeliveryRow.lease_until, DeliveryRow.attempts).where(
                    DeliveryRow.id.in_(delivery_ids)
                )
            ).all()
        fresh = sorted(row.id for row in rows if row.lease_until is None)
        suspect = [row.id for row in sorted(rows, key=lambda r: (r.attempts, -r.id)) if row.lease_until is not None]
        return fresh, suspect

    def _run_group(self, delivery_ids: list[int]) -> list[Outcome]:
        if not delivery_ids:
            return []
        claimed, events, lease_until = self._claim(delivery_ids)
        outcomes = self._run_each(claimed, events, lease_until)
        if outcomes:
            self.record(outcomes)
        return outcomes

    def run_claimed(
        self, claimed: Sequence[Claimed], events: Mapping[str, StoredEvent], lease_until: datetime
    ) -> list[Outcome]:
        """Run deliveries claimed when their events were stored; the caller records the outcomes."""
        return self._run_each(claimed, events, lease_until)

    def _run_each(
        self, claimed: Sequence[Claimed], events: Mapping[str, EventRow | StoredEvent], lease_until: datetime
    ) -> list[Outcome]:
        """One after the other, noting which runs (`workers.progress`) and keeping the lease up."""
        self.progress.claimed([(c.id, c.attempts) for c in claimed])
        outcomes: list[Outcome] = []
        for index, item in enumerate(claimed):
            if self.stopping.is_set():
                # A warm shutdown: hand the claims not yet started back, uncharged, for another worker.
                outcomes += [self._handed_back(rest) for rest in claimed[index:]]
                break
            lease_until = self._keep_lease(claimed, claimed[index:], lease_until)
            self.progress.starting(index)
            outcomes.append(self._attempt(item, events[item.event_id]))
        self.progress.finished()
        return outcomes

    def _handed_back(self, item: Claimed) -> Outcome:
        return Outcome(
            item.id,
            item.event_id,
            item.handler,
            DeliveryStatus.PENDING if item.attempts == 1 else DeliveryStatus.RETRYING,
            None,
            None,
            datetime.now(UTC),
            attempt=item.attempts,
            refund=True,
        )

    def lease_until(self, now: datetime) -> datetime:
        """The lease of deliveries claimed as they are stored: any registered handler's worst case."""
        return now + timedelta(seconds=self._lease_seconds([spec.name for spec in self.registry.all()]))

    def _claim(self, delivery_ids: list[int]) -> tuple[list[Claimed], dict[str, EventRow], datetime]:
        now = datetime.now(UTC)
        with self.sessions() as session:
            handlers = list(session.scalars(select(DeliveryRow.handler).where(DeliveryRow.id.in_(delivery_ids))))
        lease = timedelta(seconds=self._lease_seconds(handlers))
        with self.sessions() as session, session.begin():
            claimed_rows = session.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id.in_(delivery_ids),
                    DeliveryRow.status.in_(DeliveryStatus.OPEN),
                    or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= now),
                    or_(DeliveryRow.lease_until.is_(None), DeliveryRow.lease_until < now),
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
        return claimed, events, now + lease

    def _timeout(self, handler: str) -> float:
        spec = self.registry.get(handler)
        return (spec.timeout_seconds if spec else None) or self.settings.timeout_seconds

    def _lease_seconds(self, handlers: Sequence[str]) -> float:
        """One handler's worst case plus grace; `_keep_lease` extends it while a group runs."""
        return max((self._timeout(name) for name in handlers), default=self.settings.timeout_seconds) + (
            LEASE_GRACE_SECONDS
        )

    def _keep_lease(self, group: Sequence[Claimed], remaining: Sequence[Claimed], lease_until: datetime) -> datetime:
        """Extend the whole group's lease before a handler that could outlive it.

        The whole group, not only what is left: finished deliveries are recorded at the end of the
        group, and an expired lease would let the sweeper run them again.
        """
        now = datetime.now(UTC)
        if now + timedelta(seconds=self._timeout(remaining[0].handler) + 1.0) < lease_until:
            return lease_until
        extended = now + timedelta(seconds=self._lease_seconds([c.handler for c in remaining]))
        with self.sessions() as session, session.begin():
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_([c.id for c in group]), DeliveryRow.status.in_(DeliveryStatus.OPEN))
                .values(lease_until=extended)
            )
        return extended

    def _attempt(self, item: Claimed, event: EventRow | StoredEvent) -> Outcome:
        bound = log.bind(
            event_id=item.event_id, request_id=event.request_id, handler=item.handler, attempt=item.attempts
        )
        if item.attempts > item.max_attempts:
            died = f"attempt {item.attempts - 1} never finished: the worker died while running it"
            bound.error("delivery_dead", reason="worker died on every attempt")
            return Outcome(item.id, item.event_id, item.handler, DeliveryStatus.DEAD, died, None, attempt=item.attempts)
        spec = self.registry.get(item.handler)
        if spec is None:
            missing = f"handler {item.handler!r} is not registered on worker {self.worker_name or 'here'}"
            bound.warning("handler_missing", retry_in_seconds=HANDLER_MISSING_RETRY_SECONDS)
            return Outcome(
                item.id,
                item.event_id,
                item.handler,
                DeliveryStatus.PENDING if item.attempts == 1 else DeliveryStatus.RETRYING,
                missing,
                None,
                datetime.now(UTC) + timedelta(seconds=HANDLER_MISSING_RETRY_SECONDS),
                attempt=item.attempts,
                refund=True,
            )
        started = time.perf_counter()
        error: str | None = None
        permanent = False
        try:
            self._call(spec, self._event(item, event))
        except PermanentError as exc:
            permanent = True
            error = _describe(exc)
        except Exception as exc:  # noqa: BLE001 - a handler's failure (or time-out) is data, not our crash
            error = _describe(exc)
        duration_ms = (time.perf_counter() - started) * 1000.0
        if error is None:
            bound.debug("delivery_succeeded", duration_ms=round(duration_ms, 2))
            return Outcome(
                item.id, item.event_id, item.handler, DeliveryStatus.SUCCEEDED, None, duration_ms, attempt=item.attempts
            )
        if permanent or item.attempts >= item.max_attempts:
            bound.warning("delivery_dead", error=error[:200], permanent=permanent)
            return Outcome(
                item.id, item.event_id, item.handler, DeliveryStatus.DEAD, error, duration_ms, attempt=item.attempts
            )
        delay = backoff_seconds(item.attempts, self.settings)
        bound.info("delivery_retrying", error=error[:200], retry_in_seconds=round(delay, 2))
        return Outcome(
            item.id,
            item.event_id,
            item.handler,
            DeliveryStatus.RETRYING,
            error,
            duration_ms,
            datetime.now(UTC) + timedelta(seconds=delay),
            attempt=item.attempts,
        )

    def _event(self, item: Claimed, row: EventRow | StoredEvent) -> Event:
        return Event(
            id=row.id,
            source=row.source,
            action=row.action,
            sent_at=datetime.fromtimestamp(row.sent_at, UTC),
            received_at=row.received_at,
            payload=_decode_payload(row.payload),
            attempt=item.attempts,
            handler=item.handler,
            request_id=row.request_id,
        )

    def _call(self, spec: HandlerSpec, event: Event) -> None:
        timeout = spec.timeout_seconds or self.settings.timeout_seconds
        if spec.is_async:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            try:
                # wait_for stops a handler that awaits; the alarm (1 s later) one that blocks the loop.
                with time_limit(timeout + 1.0):
                    self._loop.run_until_complete(asyncio.wait_for(spec.func(event), timeout))
            except TimeoutError:
                raise HandlerTimeout(f"handler exceeded its {timeout:g} s time limit") from None
            except HandlerTimeout:
                self._loop.close()  # interrupted mid-step: never reuse that loop
                self._loop = None
                raise
            return
        with time_limit(timeout):
            spec.func(event)

    def record(self, outcomes: list[Outcome], complete: bool = False) -> None:
        """Write outcomes and event statuses in one transaction, then schedule retries.

        `complete`: the outcomes hold every delivery of their events (events
        stored by this run), so event statuses follow without a query.
        """
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
        if complete and self.single_statements is not None:
            with self.single_statements() as session:  # one statement: atomic without BEGIN/COMMIT
                record_complete(session, rows, statuses_of(outcomes), now)
        else:
            with self.sessions() as session, session.begin():
                if complete:
                    record_complete(session, rows, statuses_of(outcomes), now)
                else:
                    event_ids = {o.event_id for o in outcomes}
                    lock_events(session, event_ids)
                    record_outcomes(session, rows, now)
                    refresh_event_status(session, event_ids)
        if self.on_recorded is not None:
            self.on_recorded(outcomes)
        later = [o for o in outcomes if o.status in DeliveryStatus.OPEN and o.next_attempt_at]
        for outcome in later:
            assert outcome.next_attempt_at is not None
            delay = max((outcome.next_attempt_at - now).total_seconds(), 0.0)
            self.schedule_retry([outcome.delivery_id], delay)


def event_status(statuses: set[str]) -> str:
    """failed if any delivery is dead, processed if all succeeded, else processing."""
    if not statuses:
        return EventStatus.STORED
    if DeliveryStatus.DEAD in statuses:
        return EventStatus.FAILED
    if statuses == {DeliveryStatus.SUCCEEDED}:
        return EventStatus.PROCESSED
    return EventStatus.PROCESSING


def statuses_of(outcomes: Sequence[Outcome]) -> dict[str, str]:
    """Event statuses from outcomes that are all of their events' deliveries."""
    seen: dict[str, set[str]] = {}
    for outcome in outcomes:
        seen.setdefault(outcome.event_id, set()).add(outcome.status)
    return {event_id: event_status(statuses) for event_id, statuses in seen.items()}


def _update_status(session: Session, status_of: dict[str, str]) -> None:
    by_status: dict[str, list[str]] = {}
    for event_id, status in status_of.items():
        by_status.setdefault(status, []).append(event_id)
    for status, ids in by_status.items():
        set_status(session, status, ids)


def lock_events(session: Session, event_ids: set[str]) -> None:
    """Serialise status roll-ups per event (PostgreSQL row locks; SQLite has one writer anyway).

    Without it two workers finishing two deliveries of one event under READ COMMITTED
    each see the other's as still open and both write `processing`.
    """
    if event_ids and session.get_bind().dialect.name == "postgresql":
        session.execute(select(EventRow.id).where(EventRow.id.in_(event_ids)).order_by(EventRow.id).with_for_update())


def refresh_event_status(session: Session, event_ids: set[str]) -> None:
    """failed if any delivery is dead, processed if all succeeded, else processing."""
    if not event_ids:
        return
    counts: dict[str, dict[str, int]] = {event_id: {} for event_id in event_ids}
    for event_id, status, count in session.execute(
        select(DeliveryRow.event_id, DeliveryRow.status, func.count())
        .where(DeliveryRow.event_id.in_(event_ids))
        .group_by(DeliveryRow.event_id, DeliveryRow.status)
    ):
        counts[event_id][status] = count
    _update_status(session, {event_id: event_status(set(statuses)) for event_id, statuses in counts.items()})


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
