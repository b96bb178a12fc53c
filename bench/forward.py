"""Issue 13's forward target: one worker forwards >= 1,000 events/s to a local receiver answering 200.

The receiver is `bench/receiver.py` under uvicorn (httptools, uvloop) in its
own process. Per repetition, as the drain section does: a backlog is built
through the real ingest path (wrk against `hookyard serve` for
`drain_seconds`), then one burst worker whose only handler is a
`[[forwards]]` block to the receiver empties it; the rate comes from the
database: events / (last delivery recorded - first event stored). Every
delivery must have succeeded (each one a signed POST the receiver answered).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import msgspec

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.drain import drained, fill
from bench.procs import ROOT, Stack, hookyard, hookyard_env, http_up, stack_in, start_serve, wait_until
from bench.report import Row, at_least, median
from bench.wrk import run_wrk
from service.embedded_redis import free_port

GOAL = 1000.0
"""Events per second one worker forwards."""
SECRET = "whsec_YmVuY2gtZm9yd2FyZC1zZWNyZXQtMDEyMzQ1Njc="


class ForwardRun(msgspec.Struct):
    database: str
    events: int
    span_s: float
    wall_s: float
    rate: float


def start_receiver(stack: Stack, port: int) -> None:
    argv = [sys.executable, "-m", "uvicorn", "bench.receiver:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    proc = stack.start("forward-receiver", argv, cwd=ROOT)
    try:
        wait_until(lambda: http_up(f"http://127.0.0.1:{port}/"), 30, "the forward receiver", 0.1)
    except RuntimeError:
        raise RuntimeError(f"the forward receiver did not start:\n{proc.tail()}") from None


def config_with_forward(workdir: Path, port: int, ctx: Context, serve_db: str, receiver_port: int) -> Path:
    """The bench config with one `[[forwards]]` block; its `bench` handler is switched off by the environment."""
    path = write_config(
        workdir / "hookyard.toml", port=port, redis_url=ctx.redis_url, database_url=serve_db, spool=workdir / "spool"
    )
    block = [
        "[[forwards]]",
        'name = "forward"',
        'actions = ["*"]',
        f'url = "http://127.0.0.1:{receiver_port}/hooks"',
        f'secret = "{SECRET}"',
        'allow_hosts = ["127.0.0.1"]',
        "",
    ]
    path.write_text(path.read_text() + "\n".join(block))
    return path


def drain_forwards(ctx: Context, stack: Stack, config: Path, kind: str, url: str) -> ForwardRun:
    with database(kind, ctx.workdir / "forward", ctx.pg_base) as db_url:
        events, _jobs = fill(ctx, url, ctx.options.drain_seconds)
        env = hookyard_env(config, HOOKYARD_DATABASE_URL=db_url, HOOKYARD_HANDLERS_MODULES="[]")
        started = time.perf_counter()
        proc = stack.start(f"forward-{kind}", hookyard("worker", "--burst"), env)
        if proc.wait(600) is None:
            raise RuntimeError(f"worker did not finish forwarding:\n{proc.tail()}")
        stack.stop(proc)
        wall = time.perf_counter() - started
        stored, succeeded, span = drained(db_url)
    if stored != events or succeeded != events:
        raise RuntimeError(f"forwarding lost work: {events} queued, {stored} stored, {succeeded} forwarded")
    return ForwardRun(kind, events, span, wall, events / span if span > 0 else float("nan"))


def measure(ctx: Context) -> Measured:
    workdir = ctx.workdir / "forward"
    workdir.mkdir()
    kinds = ["sqlite"] + (["postgres"] if ctx.pg_base else [])
    runs: list[ForwardRun] = []
    with stack_in(workdir) as stack, database("sqlite", workdir, None) as serve_db:
        receiver_port, port = free_port(), free_port()
        start_receiver(stack, receiver_port)
        config = config_with_forward(workdir, port, ctx, serve_db, receiver_port)
        start_serve(stack, config, port, name="forward-serve")
        url = f"http://127.0.0.1:{port}/webhooks/gxm"
        run_wrk(url, 32, 1)
        for repetition in range(ctx.options.runs):
            for kind in kinds if repetition % 2 == 0 else kinds[::-1]:
                result = drain_forwards(ctx, stack, config, kind, url)
                runs.append(result)
                print(
                    f"  forward run {repetition + 1} {kind:8s}: {result.rate:7.0f} events/s"
                    f" ({result.events} events, wall {result.wall_s:.1f} s)",
                    flush=True,
                )
        ctx.flush(0)
    rows = []
    for kind in kinds:
        rate = median([r.rate for r in runs if r.database == kind])
        rows.append(
            Row(
                section="forward",
                target=f"forward, {kind}, 1 worker to a local receiver answering 200",
                measured=rate,
                unit="ev/s",
                goal=f">= {GOAL:,.0f} ev/s",
                passed=at_least(rate, GOAL),
                note=f"signed POSTs over pooled keep-alive connections; {ctx.options.runs} repetition(s), median",
            )
        )
    return rows, {"runs": runs}
