"""Handler outcomes and durations, counted in Redis so the API's `/metrics` can show them.

Handlers run in worker processes that Prometheus does not scrape, so each
batch of outcomes is added to a few Redis hashes in one pipeline; the API
process reads them back (`service.api.metrics`). Counters only grow; a
Redis flush resets them, which Prometheus treats as a counter reset.
Recording never fails a delivery: an error here is a log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import redis
import structlog

log = structlog.get_logger("hookyard.handler_metrics")

PREFIX = "hookyard:metrics:"
OUTCOMES_KEY = PREFIX + "deliveries"
"""Hash `<handler>|<outcome>` -> attempts that ended that way."""
DURATION_COUNT_KEY = PREFIX + "duration_count"
DURATION_SUM_KEY = PREFIX + "duration_sum"
"""Hash `<handler>` -> seconds spent in the handler."""
DURATION_BUCKET_KEY = PREFIX + "duration_bucket"
"""Hash `<handler>|<le>` -> attempts whose duration fell in that bucket only (not cumulative)."""
PAYLOAD_MISMATCH_KEY = PREFIX + "payload_mismatch"
"""Hash `<handler>` -> payloads that did not convert to the handler's `payload=` Struct."""
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, float("inf"))
"""Upper bounds in seconds of `hookyard_handler_duration_seconds`."""
SEPARATOR = "|"


class Counted(Protocol):
    """What is counted of an outcome (`workers.record.Outcome`)."""

    @property
    def handler(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def duration_ms(self) -> float | None: ...
    @property
    def mismatch(self) -> bool: ...


def bucket_label(seconds: float) -> str:
    for bound in BUCKETS:
        if seconds <= bound:
            return "+Inf" if bound == float("inf") else repr(bound)
    return "+Inf"


def record_outcomes(client: redis.Redis, outcomes: Sequence[Counted]) -> None:
    if not outcomes:
        return
    try:
        with client.pipeline(transaction=False) as pipe:
            for outcome in outcomes:
                pipe.hincrby(OUTCOMES_KEY, f"{outcome.handler}{SEPARATOR}{outcome.status}", 1)
                if outcome.mismatch:
                    pipe.hincrby(PAYLOAD_MISMATCH_KEY, outcome.handler, 1)
                if outcome.duration_ms is None:
                    continue
                seconds = outcome.duration_ms / 1000.0
                pipe.hincrby(DURATION_COUNT_KEY, outcome.handler, 1)
                pipe.hincrbyfloat(DURATION_SUM_KEY, outcome.handler, seconds)
                pipe.hincrby(DURATION_BUCKET_KEY, f"{outcome.handler}{SEPARATOR}{bucket_label(seconds)}", 1)
            pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("handler_metrics_not_recorded", error=type(exc).__name__, outcomes=len(outcomes))
