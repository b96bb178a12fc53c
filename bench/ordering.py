"""Issue 13's ordering target: draining a backlog with an ordering key over 100 keys costs at most
1.3 x the same drain without one.

Per repetition, interleaved: a fresh database, a backlog of `events` (50,000; 5,000 with `--quick`)
queued exactly as ingest queues them (its Lua script, so jobs hold the batches group commit forms),
each event's payload naming one of 100 locations, `sent_at` increasing; then one `hookyard worker
--burst` with a no-op `*` handler, keyed on the location (`BENCH_ORDERING=1`) or not. The time is
taken from the database, as `bench.drain` does: last delivery recorded - first event stored.
"""

from __future__ import annotations

import time
import uuid

import msgspec

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.drain import drained
from bench.procs import Stack, hookyard, hookyard_env, stack_in
from bench.report import Row, at_most, median
from schemas.ids import new_event_id
from schemas.wire import QueuedEvent
from service.embedded_redis import free_port
from service.ingest.enqueue import ENQUEUE_LUA, script_args

GOAL = 1.3
KEYS = 100
EVENTS, QUICK_EVENTS = 50_000, 5_000
ENQUEUE_CHUNK = 100


class OrderingRun(msgspec.Struct):
    database: str
    ordered: bool
    events: int
    span_s: float
    wall_s: float


def backlog(ctx: Context, events: int) -> None:
    """Queue `events` GuestXM events over `KEYS` locations through ingest's own Lua script."""
    ctx.flush(0)
    client = ctx.redis(0)
    script = client.register_script(ENQUEUE_LUA)
    base = int(time.time()) - events
    try:
        for start in range(0, events, ENQUEUE_CHUNK):
            batch = []
            for n in range(start, min(start + ENQUEUE_CHUNK, events)):
                body = msgspec.json.encode(
                    {
                        "data": {
                            "sent_at": base + n,
                            "action": "LOCATION:UPDATED",
                            "payload": {"location_id": n % KEYS},
                        },
                        "meta": {},
                        "warnings": {},
                    }
                ).decode()
                batch.append(
                    QueuedEvent(
                        id=new_event_id(),
                        source="gxm",
                        fingerprint=uuid.uuid4().hex,
                        received_at_us=time.time_ns() // 1000,
                        request_id=uuid.uuid4().hex[:12],
                        body=body,
                    )
                )
            script(args=script_args("hookyard", batch))
    finally:
        client.close()


def drain(ctx: Context, stack: Stack, kind: str, ordered: bool, events: int) -> OrderingRun:
    workdir = ctx.workdir / "ordering"
    with database(kind, workdir, ctx.pg_base) as db_url:
        config = write_config(
            workdir / "hookyard.toml",
            port=free_port(),
            redis_url=ctx.redis_url,
            database_url=db_url,
            spool=workdir / "spool",
        )
        config.write_text(config.read_text().replace('"bench.handlers"', '"bench.ordering_handlers"'))
        backlog(ctx, events)
        env = hookyard_env(config, BENCH_ORDERING="1" if ordered else "0")
        started = time.perf_counter()
        proc = stack.start(f"ordering-{kind}-{int(ordered)}", hookyard("worker", "--burst"), env)
        if proc.wait(1800) is None:
            raise RuntimeError(f"worker did not finish draining:\n{proc.tail()}")
        stack.stop(proc)
        wall = time.perf_counter() - started
        stored, succeeded, span = drained(db_url)
    if stored != events or succeeded != events:
        raise RuntimeError(f"ordering drain lost work: {events} queued, {stored} stored, {succeeded} succeeded")
    return OrderingRun(kind, ordered, events, span, wall)


def measure(ctx: Context) -> Measured:
    workdir = ctx.workdir / "ordering"
    workdir.mkdir()
    events = QUICK_EVENTS if ctx.options.quick else EVENTS
    kind = "postgres" if ctx.pg_base else "sqlite"
    runs: list[OrderingRun] = []
    with stack_in(workdir) as stack:
        for repetition in range(ctx.options.runs):
            plan = [False, True] if repetition % 2 == 0 else [True, False]
            for ordered in plan:
                result = drain(ctx, stack, kind, ordered, events)
                runs.append(result)
                label = "ordered" if ordered else "plain  "
                print(
                    f"  ordering run {repetition + 1} {kind} {label}: {result.events} events in {result.span_s:.1f} s"
                    f" ({result.events / result.span_s:.0f} events/s, wall {result.wall_s:.1f} s)",
                    flush=True,
                )
        ctx.flush(0)
    plain = median([r.span_s for r in runs if not r.ordered])
    keyed = median([r.span_s for r in runs if r.ordered])
    ratio = keyed / plain if plain else None
    row = Row(
        section="ordering",
        target=f"drain {events:,} events, {kind}, ordering key over {KEYS} keys vs none",
        measured=keyed,
        unit="s",
        reference=plain,
        reference_name="no ordering key",
        reference_unit="s",
        ratio=ratio,
        goal=f"<= {GOAL:g}x",
        passed=at_most(ratio, GOAL),
        note=f"1 worker, no-op handler, {ctx.options.runs} interleaved repetitions, medians",
    )
    return [row], {"runs": runs}
