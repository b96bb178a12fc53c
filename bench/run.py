"""`make bench` / `python -m bench.run`: every speed target of issue 4 in one run, one table.

Starts its own Redis (db 0 hookyard, 1 the bare peer, 2 RQ's floor), SQLite
files and PostgreSQL schemas, servers and workers, and stops them all at the end. `--only` picks sections,
`--quick` shortens everything for a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import drain, e2e, forward, ingest, memory, operate, ordering, reads, sustained
from bench.context import Context, Measured, Options
from bench.databases import postgres_base, postgres_version
from bench.procs import check_kit, redis_version, stack_in, start_redis
from bench.report import Row, machine, render, save
from bench.wrk import ensure_wrk

SECTIONS: dict[str, Callable[[Context], Measured]] = {
    "ingest": ingest.measure,
    "drain": drain.measure,
    "ordering": ordering.measure,
    "e2e": e2e.measure,
    "sustained": sustained.measure,
    "reads": reads.measure,
    "operate": operate.measure,
    "memory": memory.measure,
    "forward": forward.measure,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="short runs, smaller data: a smoke test, not a result")
    parser.add_argument("--runs", type=int, help="interleaved repetitions (default 3, quick 1)")
    parser.add_argument("--seconds", type=float, help="length of one wrk run (default 10, quick 3)")
    parser.add_argument("--drain-seconds", type=float, help="ingest load that builds a drain backlog (default 2)")
    parser.add_argument("--e2e-rate", type=int, default=500, help="events/s of the end-to-end run")
    parser.add_argument("--e2e-seconds", type=float, help="length of the end-to-end run (default 10, quick 3)")
    parser.add_argument("--read-rows", type=int, help="events stored for the read test (default 1,000,000)")
    parser.add_argument("--memory-events", type=int, help="events for the memory test (default 100,000)")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    quick = bool(args.quick)

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else short if quick else full

    return Options(
        runs=pick(args.runs, 3, 1),
        seconds=pick(args.seconds, 10.0, 3.0),
        quick=quick,
        drain_seconds=pick(args.drain_seconds, 2.0, 1.0),
        e2e_rate=args.e2e_rate,
        e2e_seconds=pick(args.e2e_seconds, 10.0, 3.0),
        read_rows=pick(args.read_rows, 1_000_000, 100_000),
        memory_events=pick(args.memory_events, 100_000, 20_000),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        print(f"bench: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    options = options_from(args)
    ensure_wrk()
    check_kit()
    pg_base = postgres_base()
    started = time.monotonic()
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hookyard-bench-") as scratch, stack_in(Path(scratch)) as stack:
        redis_url = start_redis(stack)
        extra = {"redis-server": redis_version(redis_url)}
        extra["postgresql"] = postgres_version(pg_base) if pg_base else "not reachable"
        info = machine(extra)
        ctx = Context(options=options, workdir=Path(scratch), redis_url=redis_url, pg_base=pg_base)
        for name in wanted:
            print(f"bench: {name} ...", flush=True)
            section_started = time.monotonic()
            try:
                section_rows, section_raw = SECTIONS[name](ctx)
            except Exception as exc:
                print(f"bench: {name} failed: {exc}", file=sys.stderr, flush=True)
                section_rows = [Row(section=name, target=name, measured=None, unit="", passed=False, note=str(exc))]
                section_raw = {"error": str(exc)}
            rows += section_rows
            raw[name] = section_raw
            print(f"bench: {name} took {time.monotonic() - section_started:.0f} s", flush=True)
    settings = {
        "runs": options.runs,
        "wrk_seconds": options.seconds,
        "quick": options.quick,
        "sections": ",".join(wanted),
        "total_s": round(time.monotonic() - started),
    }
    print()
    print(render(rows, info, settings))
    path = save(rows, info, settings, raw)
    print(f"\nbench: results written to {path}")
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
