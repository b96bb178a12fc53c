"""Issue 11: sustained ingest, 60 s at c32 with one worker draining on the same machine.

The ingest rows load an API with no worker, so the queue only grows; here a
`hookyard worker --processes 1` stores (and runs the no-op bench handler for)
what the API accepts while wrk keeps c32 going, on a Redis with `appendfsync
always`, both sharing the machine's cores. Reported: what the API accepted
per second, what reached the database per second over the same window, and
the backlog left in the queue when the load stops (accepted minus stored).
"""

from __future__ import annotations

import redis
from sqlalchemy import create_engine, text

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.procs import hookyard, hookyard_env, stack_in, start_redis, start_serve, wait_until
from bench.report import Row
from bench.wrk import run_wrk
from service.embedded_redis import free_port

CONNECTIONS = 32
SECONDS = 60.0


def _stored(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM events")).scalar_one())
    finally:
        engine.dispose()


def measure(ctx: Context) -> Measured:
    workdir = ctx.workdir / "sustained"
    workdir.mkdir()
    kind = "postgres" if ctx.pg_base else "sqlite"
    seconds = ctx.options.seconds if ctx.options.quick else SECONDS
    with stack_in(workdir) as stack, database(kind, workdir, ctx.pg_base) as db_url:
        redis_url = start_redis(stack, "always", name="redis-always")
        port = free_port()
        config = write_config(
            workdir / "hookyard.toml", port=port, redis_url=redis_url, database_url=db_url, spool=workdir / "spool"
        )
        start_serve(stack, config, port)
        worker = stack.start("sustained-worker", hookyard("worker", "--processes", "1"), hookyard_env(config))
        client = redis.Redis.from_url(f"{redis_url}/0", socket_timeout=5)
        try:
            wait_until(lambda: client.scard("rq:workers") > 0, 30, "a worker to register", 0.1)
        except RuntimeError:
            raise RuntimeError(f"worker did not start:\n{worker.tail()}") from None
        finally:
            client.close()
        before = _stored(db_url)
        result = run_wrk(f"http://127.0.0.1:{port}/webhooks/gxm", CONNECTIONS, seconds)
        stored = _stored(db_url) - before
    accepted_rate = result.requests / seconds
    stored_rate = stored / seconds
    backlog = max(0, result.requests - stored)
    note = (
        f"{seconds:g} s at c{CONNECTIONS} on {kind}, Redis appendfsync always, 1 worker process beside the API; "
        f"accepted {result.requests:,} ({accepted_rate:,.0f}/s, p99 {result.p99_ms:.1f} ms), stored {stored:,}, "
        f"{result.errors} errors"
    )
    out = [
        Row(
            section="sustained",
            target=f"sustained ingest c{CONNECTIONS}, 1 worker: events stored/s",
            measured=stored_rate,
            unit="ev/s",
            reference=accepted_rate,
            reference_name="accepted",
            ratio=stored_rate / accepted_rate if accepted_rate else None,
            goal="report",
            passed=result.errors == 0 and stored > 0,
            note=note,
        ),
        Row(
            section="sustained",
            target=f"sustained ingest c{CONNECTIONS}, 1 worker: backlog at the end",
            measured=float(backlog),
            unit="events",
            goal="report",
            passed=result.errors == 0,
            note="accepted minus stored when wrk stops: what the worker still has to drain",
        ),
    ]
    raw = {"requests": result.requests, "stored": stored, "seconds": seconds, "database": kind}
    return out, raw
