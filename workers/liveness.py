"""Worker liveness probe: `python -m workers.liveness`, exit 0 while every worker process here beats.

Workers serve no HTTP, so orchestrators probe them with this command. It
reads only local files, never Redis: a probe that asked Redis would fail
during a Redis outage and have every worker restarted, which cures nothing
(the workers wait Redis out by themselves) and throws away their state.

Each worker process touches its own file, `<[worker] heartbeat_path>.<slot>`,
from RQ's heartbeat: before each dequeue (every `maintenance_seconds` when
idle), every `heartbeat_seconds` while a job runs, and at each reconnect
attempt while Redis is away. The supervisor removes old files at start and
touches a slot's file when it (re)starts its process. "Live" means every
slot's file is younger than the probe's limit; a process that is stopped
(SIGSTOP), hung or wedged outside a job stops touching it. A handler stuck
inside its own time-out is the job time-out's business, not this probe's.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from schemas.settings import ConfigError, WorkerSettings, load_settings

PROBE_SLACK_SECONDS = 30
"""Added to the longest quiet spell a live worker can have (an idle dequeue plus a maintenance pass)."""


def beat_file(settings: WorkerSettings, slot: int) -> Path:
    """The file worker process `slot` touches."""
    return Path(f"{settings.heartbeat_path}.{slot}")


def beat_files(settings: WorkerSettings) -> list[Path]:
    base = Path(settings.heartbeat_path)
    return sorted(base.parent.glob(f"{base.name}.*"))


def touch(path: Path) -> None:
    """Mark `path` fresh; a failure here must not stop the worker (the probe will say so)."""
    with contextlib.suppress(OSError):
        path.touch()


def clear(settings: WorkerSettings) -> None:
    """Remove the files of a previous run (it may have had more processes); creates the directory."""
    Path(settings.heartbeat_path).parent.mkdir(parents=True, exist_ok=True)
    for path in beat_files(settings):
        path.unlink(missing_ok=True)


def max_age_seconds(settings: WorkerSettings) -> float:
    """How old a file may be while its worker lives: two idle dequeue-and-maintenance rounds plus slack."""
    return float(2 * (settings.maintenance_seconds + settings.heartbeat_seconds) + PROBE_SLACK_SECONDS)


def stale(settings: WorkerSettings, max_age: float, now: float | None = None) -> tuple[list[str], int]:
    """Problems (one line each) and how many worker files were read."""
    files = beat_files(settings)
    if not files:
        return [f"no worker heartbeat file {settings.heartbeat_path}.* (is `hookyard worker` running here?)"], 0
    moment = time.time() if now is None else now
    problems = []
    for path in files:
        try:
            age = moment - path.stat().st_mtime
        except OSError:
            continue  # removed between the glob and the stat: a supervisor restarting
        if age > max_age:
            problems.append(f"{path} last touched {age:.0f} s ago (limit {max_age:.0f} s)")
    return problems, len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.liveness", description=__doc__.splitlines()[0])
    parser.add_argument("--max-age", type=float, help="seconds (default: from [worker] heartbeat settings)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings().worker
    except ConfigError as exc:
        sys.stderr.write(f"hookyard: {exc}\n")
        return 2
    limit = args.max_age if args.max_age is not None else max_age_seconds(settings)
    problems, count = stale(settings, limit)
    if problems:
        sys.stderr.write("worker liveness: " + "; ".join(problems) + "\n")
        return 1
    sys.stdout.write(f"worker liveness: {count} worker process(es) beating\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
