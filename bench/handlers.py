"""The bench's one handler: `*`, does nothing, except note when it started for end-to-end runs.

An event whose payload carries `bench_t0` (the sender's `time.time()` just
before it wrote the request) gets its POST-to-handler-start latency pushed
onto `bench:e2e` in the Redis named by `BENCH_E2E_REDIS_URL`. Drain events
carry no `bench_t0`, so for them the handler is a true no-op.
"""

from __future__ import annotations

import os
import time

import redis

from workers import Event, handler

E2E_KEY = "bench:e2e"
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_E2E_REDIS_URL"], socket_timeout=2)
    return _client


@handler("*", name="bench")
def bench_handler(event: Event) -> None:
    started = time.time()
    sent = event.payload.get("bench_t0")
    if isinstance(sent, float) and event.attempt == 1:
        _redis().rpush(E2E_KEY, f"{started - sent:.6f}")
