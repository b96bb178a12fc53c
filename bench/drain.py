"""Target 3: how fast workers store events and fan them out, against RQ's own no-op floor.

Per repetition, interleaved: RQ's floor (`../shared/bench/rq_floor.py`,
forking `Worker` and `SimpleWorker`, on the same Redis, db 2), then hookyard
on SQLite, on PostgreSQL, and on PostgreSQL with two worker processes. A
hookyard run builds a backlog through the real ingest path (wrk against
`hookyard serve` for `drain_seconds`, so jobs hold the batches group commit
really forms), then starts burst workers with one no-op `*` handler and
takes the rate from the database itself, like `rq_floor.py` takes it from
RQ's job timestamps: events / (last delivery recorded - first event stored).
"""

from __future__ import annotations

import subprocess
import sys
import time

import msgspec
from sqlalchemy import create_engine, func, select

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.procs import SHARED, Stack, hookyard, hookyard_env, stack_in, start_serve
from bench.report import Row, at_least, median
from bench.wrk import run_wrk
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow
from service.embedded_redis import free_port

FORK_GOAL = 10.0
SIMPLE_GOAL = 3.0
SCALE_GOAL = 1.6


class DrainRun(msgspec.Struct):
    database: str
    workers: int
    events: int
    jobs: int
    span_s: float
    wall_s: float
    rate: float
    """Events per second over the span."""


def rq_floor(ctx: Context, mode: str, jobs: int) -> float:
    """RQ's own no-op drain rate (span jobs/s) for one mode, one repetition."""
    argv = [
        sys.executable,
        str(SHARED / "rq_floor.py"),
        "-n",
        str(jobs),
        "-r",
        "1",
        "--modes",
        mode,
        "--url",
        f"{ctx.redis_url}/2",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=SHARED, timeout=600, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RQFLOOR"):
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            return float(fields["median_span_jps"])
    raise RuntimeError(f"rq_floor.py printed no RQFLOOR line:\n{done.stdout}\n{done.stderr}")


def fill(ctx: Context, url: str, seconds: float) -> tuple[int, int]:
    """Load ingest to build a backlog; returns (events, jobs) queued."""
    ctx.flush(0)
    run_wrk(url, 32, seconds)
    client = ctx.redis(0)
    try:
        # wrk stops with requests still in flight; the server queues those a moment later
        events, settled = -1, int(client.hlen("hookyard:fp:gxm"))
        while settled != events:
            time.sleep(0.2)
            events, settled = settled, int(client.hlen("hookyard:fp:gxm"))
        return events, int(client.llen("rq:queue:hookyard"))
    finally:
        client.close()


def drain(ctx: Context, stack: Stack, kind: str, workers: int, url: str) -> DrainRun:
    with database(kind, ctx.workdir / "drain", ctx.pg_base) as db_url:
        events, jobs = fill(ctx, url, ctx.options.drain_seconds)
        env = hookyard_env(
            ctx.workdir / "drain" / "hookyard.toml",
            HOOKYARD_DATABASE_URL=db_url,
            BENCH_E2E_FILE=str(ctx.workdir / "unused-e2e.txt"),
        )
        started = time.perf_counter()
        procs = [stack.start(f"drain-{kind}-{i}", hookyard("worker", "--burst"), env) for i in range(workers)]
        for proc in procs:
            if proc.wait(600) is None:
                raise RuntimeError(f"worker did not finish draining:\n{proc.tail()}")
            stack.stop(proc)
        wall = time.perf_counter() - started
        stored, succeeded, span = drained(db_url)
    if stored != events or succeeded != events:
        raise RuntimeError(f"drain lost work: {events} queued, {stored} stored, {succeeded} deliveries succeeded")
    return DrainRun(kind, workers, events, jobs, span, wall, events / span if span > 0 else float("nan"))


def drained(db_url: str) -> tuple[int, int, float]:
    """(events stored, deliveries succeeded, seconds from the first event stored to the last delivery recorded)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(EventRow)).scalar_one()
            succeeded = conn.execute(
                select(func.count()).where(DeliveryRow.status == DeliveryStatus.SUCCEEDED)
            ).scalar_one()
            first = conn.execute(select(func.min(EventRow.stored_at))).scalar_one()
            last = conn.execute(select(func.max(DeliveryRow.updated_at))).scalar_one()
    finally:
        engine.dispose()
    return int(stored), int(succeeded), (last - first).total_seconds()


def measure(ctx: Context) -> Measured:
    workdir = ctx.workdir / "drain"
    workdir.mkdir()
    fork_jobs, simple_jobs = (200, 600) if ctx.options.quick else (500, 1500)
    floors: dict[str, list[float]] = {"fork": [], "simple": []}
    runs: list[DrainRun] = []
    kinds = ["sqlite"] + (["postgres"] if ctx.pg_base else [])
    with stack_in(workdir) as stack, database("sqlite", workdir, None) as serve_db:
        port = free_port()
        config = write_config(
            workdir / "hookyard.toml",
            port=port,
            redis_url=ctx.redis_url,
            database_url=serve_db,
            spool=workdir / "spool",
        )
        start_serve(stack, config, port, name="drain-serve")
        url = f"http://127.0.0.1:{port}/webhooks/gxm"
        run_wrk(url, 32, 1)
        for repetition in range(ctx.options.runs):
            floors["fork"].append(rq_floor(ctx, "fork", fork_jobs))
            floors["simple"].append(rq_floor(ctx, "simple", simple_jobs))
            plan = [(kind, 1) for kind in kinds] + [(kinds[-1], 2)]
            if repetition % 2:
                plan.reverse()
            for kind, workers in plan:
                result = drain(ctx, stack, kind, workers, url)
                runs.append(result)
                print(
                    f"  drain run {repetition + 1} {kind:8s} x{workers}: {result.rate:7.0f} events/s"
                    f" ({result.events} events in {result.jobs} jobs, wall {result.wall_s:.1f} s)"
                    f"  floors fork {floors['fork'][-1]:.0f} simple {floors['simple'][-1]:.0f} jobs/s",
                    flush=True,
                )
        ctx.flush(0)
    return rows(ctx, floors, runs, kinds), {"floors": floors, "runs": runs}


def rows(ctx: Context, floors: dict[str, list[float]], runs: list[DrainRun], kinds: list[str]) -> list[Row]:
    fork, simple = median(floors["fork"]), median(floors["simple"])
    out: list[Row] = []
    for kind in kinds:
        rate = median([r.rate for r in runs if r.database == kind and r.workers == 1])
        batch = median([r.events / r.jobs for r in runs if r.database == kind and r.workers == 1 and r.jobs])
        for name, floor, goal in (("forking Worker", fork, FORK_GOAL), ("SimpleWorker", simple, SIMPLE_GOAL)):
            ratio = rate / floor if floor else None
            out.append(
                Row(
                    section="drain",
                    target=f"drain, {kind}, 1 worker vs RQ {name}",
                    measured=rate,
                    unit="ev/s",
                    reference=floor,
                    reference_name=f"RQ {name}",
                    reference_unit="jobs/s",
                    ratio=ratio,
                    goal=f">= {goal:g}x",
                    passed=at_least(ratio, goal),
                    note=f"about {batch:.0f} events per RQ job (a waiting job takes new events while under 32 KiB)"
                    if goal == SIMPLE_GOAL
                    else "",
                )
            )
    kind = kinds[-1]
    one = median([r.rate for r in runs if r.database == kind and r.workers == 1])
    two = median([r.rate for r in runs if r.database == kind and r.workers == 2])
    ratio = two / one if one else None
    out.append(
        Row(
            section="drain",
            target=f"drain, {kind}, 2 workers vs 1",
            measured=two,
            unit="ev/s",
            reference=one,
            reference_name="1 worker",
            ratio=ratio,
            goal=f">= {SCALE_GOAL}x",
            passed=at_least(ratio, SCALE_GOAL),
            note=f"{ctx.options.runs} interleaved repetitions, medians",
        )
    )
    return out
