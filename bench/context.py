"""What every measurement gets: the options of the run, its scratch directory, Redis and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.report import Row


@dataclass
class Options:
    runs: int
    """Interleaved repetitions per comparison; figures are medians over them."""
    seconds: float
    """Length of one wrk run (the max-latency target wants 10 s)."""
    quick: bool
    drain_seconds: float
    """How long ingest is loaded to build the backlog a drain run empties."""
    e2e_rate: int
    e2e_seconds: float
    read_rows: int
    memory_events: int


@dataclass
class Context:
    options: Options
    workdir: Path
    redis_url: str
    """`redis://127.0.0.1:<port>` without a database number."""
    pg_base: str | None

    def redis(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(f"{self.redis_url}/{db}", socket_timeout=30)

    def flush(self, db: int) -> None:
        client = self.redis(db)
        try:
            client.flushdb()
        finally:
            client.close()


Measured = tuple[list[Row], dict[str, Any]]
