"""Target 6: `hookyard serve` RSS after many events; a worker's RSS flat while it drains them.

wrk loads ingest until Redis holds `memory_events` events, then the serve
process's RSS is read. A burst worker then drains them; its RSS is sampled
when 10 % and when 95 % of the events have been handled (a burst worker
exits at 100 %), so any per-event
growth (caches, leaked rows, logs held in memory) shows as a ratio.
"""

from __future__ import annotations

import time

from sqlalchemy import create_engine, func, select

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.procs import hookyard, hookyard_env, stack_in, start_serve
from bench.report import Row, at_most
from bench.wrk import run_wrk
from schemas.tables import DeliveryRow, DeliveryStatus
from service.embedded_redis import free_port

SERVE_GOAL_MB = 150.0
FLAT_GOAL = 0.10
MB = 1024 * 1024


def measure(ctx: Context) -> Measured:
    workdir = ctx.workdir / "memory"
    workdir.mkdir()
    target = ctx.options.memory_events
    kind = "postgres" if ctx.pg_base else "sqlite"
    ctx.flush(0)
    with stack_in(workdir) as stack, database(kind, workdir, ctx.pg_base) as db_url:
        port = free_port()
        config = write_config(
            workdir / "hookyard.toml", port=port, redis_url=ctx.redis_url, database_url=db_url, spool=workdir / "spool"
        )
        serve = start_serve(stack, config, port)
        serve_start = serve.rss_bytes() / MB
        client = ctx.redis(0)
        try:
            while (queued := int(client.hlen("hookyard:fp:gxm"))) < target:
                run_wrk(f"http://127.0.0.1:{port}/webhooks/gxm", 32, 2)
        finally:
            client.close()
        serve_rss = serve.rss_bytes() / MB
        stack.stop(serve)
        env = hookyard_env(config, BENCH_E2E_FILE=str(ctx.workdir / "unused-e2e.txt"))
        worker = stack.start("memory-worker", hookyard("worker", "--burst"), env)
        engine = create_engine(db_url)
        samples: dict[str, float] = {}
        try:
            marks = {"early": queued // 10, "late": queued * 95 // 100}
            while worker.alive() or len(samples) < len(marks):
                with engine.connect() as conn:
                    done = conn.execute(
                        select(func.count()).where(DeliveryRow.status == DeliveryStatus.SUCCEEDED)
                    ).scalar_one()
                for name, mark in marks.items():
                    if name not in samples and done >= mark and worker.alive():
                        samples[name] = worker.rss_bytes() / MB
                if not worker.alive():
                    break
                time.sleep(0.25)
        finally:
            engine.dispose()
        stack.stop(worker)
    ctx.flush(0)
    early, late = samples.get("early"), samples.get("late")
    growth = (late / early - 1.0) if early and late else None
    rows = [
        Row(
            section="memory",
            target=f"serve RSS after {queued:,} events",
            measured=serve_rss,
            unit="MB",
            reference=serve_start,
            reference_name="at start",
            goal=f"<= {SERVE_GOAL_MB:g} MB",
            passed=at_most(serve_rss, SERVE_GOAL_MB),
        ),
        Row(
            section="memory",
            target=f"worker RSS at {queued * 95 // 100:,} vs {queued // 10:,} events",
            measured=late,
            unit="MB",
            reference=early,
            reference_name=f"at {queued // 10:,}",
            ratio=None if growth is None else 1.0 + growth,
            goal=f"within +-{FLAT_GOAL:.0%}",
            passed=None if growth is None else abs(growth) <= FLAT_GOAL,
            note="" if growth is not None else "the worker finished before both samples were taken",
        ),
    ]
    return rows, {"serve_start_mb": serve_start, "serve_mb": serve_rss, "worker_mb": samples, "events": queued}
