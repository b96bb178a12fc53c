"""Run claimed deliveries: each handler isolated and time-limited, one outcome per attempt.

A group of deliveries claimed together (`workers.lease`) runs in id order in
the worker process. Before each one the worker notes which it is starting
(`workers.progress`, so if a handler kills the process only that one is
charged); the worker's heartbeat keeps the group's leases until their
outcomes are recorded (`workers.lease.renew`).
A handler's exception or time-out is data, never our crash: it becomes that
delivery's `Outcome` (retry with backoff, or `dead` after `max_attempts` or
at once on `PermanentError`) and the next delivery runs as if nothing
happened. On SIGTERM the claims not yet started are handed back uncharged.
`workers.record` writes the outcomes.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import msgspec
import structlog
from sqlalchemy import func, literal_column, select

from schemas.settings import HandlerSettings
from schemas.tables import DeliveryRow, DeliveryStatus
from workers import lease, record
from workers.context import WorkerContext
from workers.event import DeliveryError, Event, PermanentError, RetryAfter, StoredLike, build_event
from workers.lease import Claimed
from workers.record import Outcome
from workers.registry import HandlerSpec
from workers.shared import logs, tracing
from workers.shared.defaults import HANDLER_MISSING_RETRY_SECONDS
from workers.store import Stored

log = structlog.get_logger("hookyard.deliver")


class HandlerTimeout(Exception):
    """The handler ran past its time limit."""


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


def run(context: WorkerContext, delivery_ids: Sequence[int]) -> list[Outcome]:
    """Run the due ones among `delivery_ids`: fresh ones together, suspect ones singly, each group recorded.

    Pass after pass while a pass ran something and some were left unclaimed: deliveries of one
    ordering key claim one at a time, the next once the one before it is recorded.
    """
    left = list(delivery_ids)
    outcomes: list[Outcome] = []
    while left:
        ran = _run_pass(context, left)
        if not ran:
            break
        done = {outcome.delivery_id for outcome in ran}
        left = [delivery_id for delivery_id in left if delivery_id not in done]
        outcomes += ran
    return outcomes


def run_stored(
    context: WorkerContext, stored: Stored, traces: Mapping[str, str] | None = None
) -> tuple[list[Outcome], list[int]]:
    """The store job's deliveries inserted unclaimed (`stored.waiting`: ordered or paused handlers): claim
    what may run (a key's whole chain in this batch at once), run it, not recorded; returns the outcomes
    and the ids left unclaimed. The events are the ones just stored, not read again."""
    ids = [c.id for c in stored.waiting]
    claimed, known = lease.claim(context, ids, stored.events)
    ran = run_group(context, claimed, known, traces, stale=stale_of(context, claimed))
    got = {c.id for c in claimed}
    return ran, [delivery_id for delivery_id in ids if delivery_id not in got]


def _run_pass(context: WorkerContext, delivery_ids: list[int]) -> list[Outcome]:
    fresh, suspect = lease.partition(context, delivery_ids)
    outcomes: list[Outcome] = []
    for group in [fresh, *([delivery_id] for delivery_id in suspect)]:
        if not group:
            continue
        claimed, events = lease.claim(context, group)
        ran = run_group(context, claimed, events, stale=stale_of(context, claimed))
        mine = set(delivery_ids) - {outcome.delivery_id for outcome in ran}
        record.record(context, ran, mine=mine)
        outcomes += ran
    return outcomes


def stale_of(context: WorkerContext, claimed: Sequence[Claimed]) -> dict[int, str]:
    """`skip_stale`: the claimed deliveries whose key already has a success with a later `sent_at`, and why.

    One query for the batch (`ix_deliveries_ordering`)."""
    keyed = [c for c in claimed if c.key is not None and c.sent_at is not None]
    keyed = [c for c in keyed if (spec := context.registry.get(c.handler)) is not None and spec.skip_stale]
    if not keyed:
        return {}
    with context.sessions() as session:
        latest = {
            (handler, key): sent_at
            for handler, key, sent_at in session.execute(
                select(DeliveryRow.handler, DeliveryRow.ordering_key, func.max(DeliveryRow.ordering_sent_at))
                .where(
                    DeliveryRow.ordering_key.is_not(None),
                    DeliveryRow.status == literal_column("'succeeded'"),  # literal: the partial index applies
                    DeliveryRow.ordering_key.in_({c.key for c in keyed}),
                    DeliveryRow.handler.in_({c.handler for c in keyed}),
                )
                .group_by(DeliveryRow.handler, DeliveryRow.ordering_key)
            )
        }
    stale: dict[int, str] = {}
    for c in keyed:
        newest = latest.get((c.handler, c.key))
        if newest is not None and c.sent_at is not None and c.sent_at < newest:
            when = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            stale[c.id] = f"stale: an event sent later ({when}) already succeeded for ordering key {c.key!r}"
    return stale


def run_group(
    context: WorkerContext,
    claimed: Sequence[Claimed],
    events: Mapping[str, StoredLike],
    traces: Mapping[str, str] | None = None,
    stale: Mapping[int, str] | None = None,
) -> list[Outcome]:
    """One after the other, noting which runs (`workers.progress`); not recorded (the heartbeat keeps the leases).

    `traces` maps an event id to the `traceparent` its delivery spans hang under (its store span);
    `stale` the deliveries `skip_stale` skips (not run, attempt given back) to why. Deliveries of one
    ordering key come in key order (`lease.in_key_order`); once one of them is left open (a retry),
    the later ones of its key are given back uncharged, to be woken when it closes.
    """
    context.progress.claimed([(c.id, c.attempts) for c in claimed])
    outcomes: list[Outcome] = []
    halted: set[tuple[str, str]] = set()
    for index, item in enumerate(claimed):
        if context.stopping.is_set():
            # A warm shutdown: hand the claims not yet started back, uncharged, for another worker.
            outcomes += [_uncharged(rest, None, datetime.now(UTC)) for rest in claimed[index:]]
            break
        if item.key is not None and (item.handler, item.key) in halted:
            outcomes.append(_uncharged(item, None, None))
            continue
        if stale and item.id in stale:
            outcomes.append(_skipped(item, stale[item.id]))
            continue
        context.progress.starting(index)
        outcome = attempt(context, item, events[item.event_id], (traces or {}).get(item.event_id, ""))
        if item.key is not None:
            outcome = msgspec.structs.replace(outcome, key=item.key)
            if outcome.status in DeliveryStatus.OPEN:
                halted.add((item.handler, item.key))
        outcomes.append(outcome)
    context.progress.finished()
    return outcomes


def _uncharged(item: Claimed, error: str | None, due: datetime | None) -> Outcome:
    """An attempt that never really ran: its count is given back and the delivery stays open, queued again at
    `due` (`None`: not queued; the end of the delivery before it in its key queues it, `record.wake`)."""
    return Outcome(
        item.id,
        item.event_id,
        item.handler,
        DeliveryStatus.PENDING if item.attempts == 1 else DeliveryStatus.RETRYING,
        error,
        None,
        due,
        attempt=item.attempts,
        refund=True,
    )


def _skipped(item: Claimed, why: str) -> Outcome:
    """`skip_stale`: not run; the attempt is given back, and the key's next delivery may go."""
    log.info("delivery_skipped", event_id=item.event_id, handler=item.handler, ordering_key=item.key)
    return Outcome(
        item.id,
        item.event_id,
        item.handler,
        DeliveryStatus.SKIPPED,
        why,
        None,
        attempt=item.attempts,
        refund=True,
        key=item.key,
    )


def attempt(context: WorkerContext, item: Claimed, event: StoredLike, trace: str = "") -> Outcome:
    """Run one claimed delivery's handler and say what came of it; never raises for the handler.

    Every log line meanwhile (the handler's own, through logging, included) carries the event and
    request ids. With tracing on, the attempt is a span (child of `trace`, the event's store span,
    or a trace of its own for a retry or a replay) with the handler running inside it.
    """
    with logs.bound(event_id=item.event_id, request_id=event.request_id, handler=item.handler):
        if tracing.tracer() is None:
            return _attempt(context, item, event)
        attributes: dict[str, str | int] = {
            "hookyard.event_id": item.event_id,
            "hookyard.handler": item.handler,
            "hookyard.attempt": item.attempts,
        }
        with tracing.span(f"deliver {item.handler}", trace, attributes=attributes) as span:
            outcome = _attempt(context, item, event)
            tracing.outcome(span, outcome.status, outcome.error)
            return outcome


def _attempt(context: WorkerContext, item: Claimed, event: StoredLike) -> Outcome:
    bound = log.bind(event_id=item.event_id, request_id=event.request_id, handler=item.handler, attempt=item.attempts)
    if item.attempts > item.max_attempts:
        died = f"attempt {item.attempts - 1} never finished: the worker died while running it"
        bound.error("delivery_dead", reason="worker died on every attempt")
        return Outcome(item.id, item.event_id, item.handler, DeliveryStatus.DEAD, died, None, attempt=item.attempts)
    spec = context.registry.get(item.handler)
    if spec is None:
        missing = f"handler {item.handler!r} is not registered on worker here"
        bound.warning("handler_missing", retry_in_seconds=HANDLER_MISSING_RETRY_SECONDS)
        return _uncharged(item, missing, datetime.now(UTC) + timedelta(seconds=HANDLER_MISSING_RETRY_SECONDS))
    started = time.perf_counter()
    error: str | None = None
    permanent = mismatch = False
    retry_after: float | None = None
    try:
        built = build_event(event, item.attempts, item.handler)
        spec.key_of(built)  # an ordering_key that raises fails its own delivery, attempt after attempt
        if spec.payload is not None:
            built = _typed(built, spec.payload)
        _call(context, spec, built)
    except PayloadMismatch as exc:
        permanent = mismatch = True
        error = str(exc)
    except PermanentError as exc:
        permanent = True
        error = _describe(exc)
    except RetryAfter as exc:
        retry_after = min(max(exc.seconds, 0.0), context.settings.handlers.retry_max_seconds)
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
            item.id,
            item.event_id,
            item.handler,
            DeliveryStatus.DEAD,
            error,
            duration_ms,
            attempt=item.attempts,
            mismatch=mismatch,
        )
    delay = backoff_seconds(item.attempts, context.settings.handlers) if retry_after is None else retry_after
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


class PayloadMismatch(Exception):
    """The payload does not convert to the handler's `payload=` Struct: dead at once, it never will."""


def _typed(event: Event, struct: type[msgspec.Struct]) -> Event:
    """`event.data`: the payload converted to the handler's Struct (msgspec names the field, `$.field`)."""
    try:
        data = msgspec.convert(event.payload, struct)
    except msgspec.ValidationError as exc:
        raise PayloadMismatch(f"payload does not match {struct.__name__}: {exc}") from None
    return msgspec.structs.replace(event, data=data)


def _call(context: WorkerContext, spec: HandlerSpec, event: Event) -> None:
    timeout = lease.handler_timeout(context, spec.name)
    if spec.is_async:
        if context.handler_loop is None:
            context.handler_loop = asyncio.new_event_loop()
        loop = context.handler_loop
        try:
            # wait_for stops a handler that awaits; the alarm (1 s later) one that blocks the loop.
            with time_limit(timeout + 1.0):
                loop.run_until_complete(asyncio.wait_for(spec.func(event), timeout))
        except TimeoutError:
            raise HandlerTimeout(f"handler exceeded its {timeout:g} s time limit") from None
        except HandlerTimeout:
            loop.close()  # interrupted mid-step: never reuse that loop
            context.handler_loop = None
            raise
        return
    with time_limit(timeout):
        spec.func(event)


def call(context: WorkerContext, spec: HandlerSpec, row: StoredLike, attempt: int = 1) -> None:
    """Run `spec` once on a stored event as an attempt would (typed payload, time limit, async loop),
    raising what it raises; nothing is claimed or recorded (`hookyard try`)."""
    event = build_event(row, attempt, spec.name)
    _call(context, spec, _typed(event, spec.payload) if spec.payload is not None else event)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DeliveryError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


describe = _describe
"""How a handler's failure reads in `last_error` (and in `hookyard try`)."""
