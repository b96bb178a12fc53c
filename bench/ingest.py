"""Targets 1 and 2: ingest throughput and latency against the bare ASGI + LPUSH bound.

Both servers run side by side on the same Redis (hookyard on db 0, the bare
peer on db 1) and are loaded one at a time with the same wrk script, in
alternating order, so machine drift hits both alike. No worker runs: the
queue only grows, and both databases are emptied between runs to keep Redis
small.

Vendor rows (issue 10): a `stripe` and a `standard-webhooks` source, each
loaded with `bench/vendor_post.lua` (a ~1 KiB body signed per request the way
that vendor signs it) at c32; the bare peer gets byte for byte the same
requests (the script also sends the kit's GuestXM header, all it checks), so
the ratio prices HMAC verification, the json format's locators and the
vendor-id de-duplication.

Fsync rows (issue 11): a third server, hookyard on a Redis of its own with
`appendfsync always` (what CONTRACT section 9 requires of a Redis older than
7.2), takes its turn in every run against the same bare bound: group commit
makes fsync-per-write affordable, one fsync per group rather than per event.
"""

from __future__ import annotations

import redis

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.procs import VENDOR_KEYS, stack_in, start_bare, start_redis, start_serve
from bench.report import Row, at_least, at_most, median
from bench.wrk import VENDOR_SCRIPT, WrkResult, run_wrk
from service.embedded_redis import free_port

CONNECTIONS = (32, 64)
FSYNC = "hookyard-fsync"
"""hookyard on a Redis with `appendfsync always`."""
THROUGHPUT_GOAL = 0.75
P99_GOAL = 1.5
MAX_MS_GOAL = 100.0
VENDOR_CONNECTIONS = 32


SERVERS = ("bare", "hookyard", FSYNC)


def measure(ctx: Context) -> Measured:
    runs: dict[str, dict[int, list[WrkResult]]] = {name: {c: [] for c in CONNECTIONS} for name in SERVERS}
    vendor_runs: dict[str, dict[str, list[WrkResult]]] = {}
    workdir = ctx.workdir / "ingest"
    workdir.mkdir()
    with stack_in(workdir) as stack, database("sqlite", workdir, None) as db_url:
        port, bare_port, fsync_port = free_port(), free_port(), free_port()
        config = write_config(
            workdir / "hookyard.toml", port=port, redis_url=ctx.redis_url, database_url=db_url, spool=workdir / "spool"
        )
        fsync_redis = start_redis(stack, "always", name="redis-always")
        fsync_config = write_config(
            workdir / "hookyard-fsync.toml",
            port=fsync_port,
            redis_url=fsync_redis,
            database_url=db_url,
            spool=workdir / "spool-fsync",
        )
        start_serve(stack, config, port)
        start_serve(stack, fsync_config, fsync_port, name="serve-fsync")
        start_bare(stack, ctx.redis_url, bare_port)
        urls = {
            "hookyard": f"http://127.0.0.1:{port}/webhooks/gxm",
            "bare": f"http://127.0.0.1:{bare_port}/webhooks/gxm",
            FSYNC: f"http://127.0.0.1:{fsync_port}/webhooks/gxm",
        }
        for name in SERVERS:  # warm them up: imports, connection pools, JIT-free caches
            run_wrk(urls[name], 32, 1)
        for run in range(ctx.options.runs):
            for connections in CONNECTIONS:
                shift = (run + connections // 32) % len(SERVERS)
                order = SERVERS[shift:] + SERVERS[:shift]
                for name in order:
                    result = run_wrk(urls[name], connections, ctx.options.seconds)
                    runs[name][connections].append(result)
                    print(
                        f"  ingest run {run + 1} c{connections} {name:8s} {result.rps:8.0f} req/s"
                        f"  p99 {result.p99_ms:6.2f} ms  max {result.max_ms:6.1f} ms  errors {result.errors}",
                        flush=True,
                    )
                    ctx.flush(0)
                    ctx.flush(1)
                    _flush(fsync_redis)
            for vendor, (key, _secret) in VENDOR_KEYS.items():
                env = {"VENDOR": vendor, "HMAC_KEY": key}
                vendor_urls = {"hookyard": f"http://127.0.0.1:{port}/webhooks/{vendor}", "bare": urls["bare"]}
                order = ("bare", "hookyard") if run % 2 == 0 else ("hookyard", "bare")
                for name in order:
                    result = run_wrk(
                        vendor_urls[name], VENDOR_CONNECTIONS, ctx.options.seconds, script=str(VENDOR_SCRIPT), env=env
                    )
                    vendor_runs.setdefault(vendor, {}).setdefault(name, []).append(result)
                    print(
                        f"  ingest run {run + 1} c{VENDOR_CONNECTIONS} {vendor} {name:8s} {result.rps:8.0f} req/s"
                        f"  p99 {result.p99_ms:6.2f} ms  errors {result.errors}",
                        flush=True,
                    )
                    ctx.flush(0)
                    ctx.flush(1)
    return rows(runs, ctx.options.seconds) + vendor_rows(vendor_runs), {"wrk": runs, "vendors": vendor_runs}


def _flush(redis_url: str) -> None:
    client = redis.Redis.from_url(f"{redis_url}/0", socket_timeout=30)
    try:
        client.flushdb()
    finally:
        client.close()


def vendor_rows(runs: dict[str, dict[str, list[WrkResult]]]) -> list[Row]:
    """The ratio is the median of the per-run ratios: each run loads both servers back to back, so a
    pair shares the machine's state of the moment, where medians taken apart mix different moments."""
    out = []
    for vendor, by in runs.items():
        row = throughput_row(
            f"ingest throughput, c{VENDOR_CONNECTIONS}, {vendor} (1 KiB, HMAC)", by["hookyard"], by["bare"]
        )
        pairs = [mine.rps / bare.rps for mine, bare in zip(by["hookyard"], by["bare"], strict=True) if bare.rps]
        row.ratio = median(pairs) if pairs else None
        row.passed = at_least(row.ratio, THROUGHPUT_GOAL) and not row.note
        row.note = (row.note + "; " if row.note else "") + f"ratio: median of {len(pairs)} paired runs"
        out.append(row)
    return out


def throughput_row(target: str, mine_runs: list[WrkResult], bare_runs: list[WrkResult]) -> Row:
    """Median req/s against the bare bound's; passes at THROUGHPUT_GOAL with no error at all."""
    errors = sum(r.errors for r in mine_runs)
    mine = median([r.rps for r in mine_runs])
    bare = median([r.rps for r in bare_runs])
    ratio = mine / bare if bare else None
    return Row(
        section="ingest",
        target=target,
        measured=mine,
        unit="req/s",
        reference=bare,
        reference_name="bare",
        ratio=ratio,
        goal=f">= {THROUGHPUT_GOAL}x",
        passed=at_least(ratio, THROUGHPUT_GOAL) and errors == 0,
        note=f"{errors} non-2xx or socket errors" if errors else "",
    )


def p99_row(target: str, mine_runs: list[WrkResult], bare_runs: list[WrkResult]) -> Row:
    mine_p99 = median([r.p99_ms for r in mine_runs])
    bare_p99 = median([r.p99_ms for r in bare_runs])
    ratio = mine_p99 / bare_p99 if bare_p99 else None
    return Row(
        section="ingest",
        target=target,
        measured=mine_p99,
        unit="ms",
        reference=bare_p99,
        reference_name="bare",
        ratio=ratio,
        goal=f"<= {P99_GOAL}x",
        passed=at_most(ratio, P99_GOAL),
    )


def rows(runs: dict[str, dict[int, list[WrkResult]]], seconds: float) -> list[Row]:
    out = [throughput_row(f"ingest throughput, c{c}", runs["hookyard"][c], runs["bare"][c]) for c in CONNECTIONS]
    out.append(p99_row("ingest p99, c32", runs["hookyard"][32], runs["bare"][32]))
    fsync = "Redis appendfsync always"
    out += [throughput_row(f"ingest throughput, c{c}, {fsync}", runs[FSYNC][c], runs["bare"][c]) for c in CONNECTIONS]
    out += [p99_row(f"ingest p99, c{c}, {fsync}", runs[FSYNC][c], runs["bare"][c]) for c in CONNECTIONS]
    worst = max(r.max_ms for r in runs["hookyard"][32])
    out.append(
        Row(
            section="ingest",
            target=f"ingest max latency, c32, {seconds:g} s runs",
            measured=worst,
            unit="ms",
            reference=max(r.max_ms for r in runs["bare"][32]),
            reference_name="bare",
            goal=f"<= {MAX_MS_GOAL:g} ms",
            passed=at_most(worst, MAX_MS_GOAL),
            note="" if seconds >= 10 else f"runs of {seconds:g} s, the goal is stated for 10 s",
        )
    )
    return out
