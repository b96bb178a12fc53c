"""Per-key rate limits in Redis, so every API replica counts against the same number.

A fixed 60-second window: one pipeline does INCR and EXPIRE on
`hookyard:rl:<key name>:<window>`. Over the limit, the caller waits until the
window ends (`Retry-After`, at most 60 s). When Redis does not answer within
`TIMEOUT_SECONDS` the limiter fails open (reads matter more than limits
during an outage), says so in a log line at most every `LOG_EVERY_SECONDS`,
and skips Redis for `BACKOFF_SECONDS` so each request does not wait again.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger("hookyard.api.ratelimit")

WINDOW_SECONDS = 60
TIMEOUT_SECONDS = 0.25
"""Longest a request waits for Redis before it is let through uncounted."""
BACKOFF_SECONDS = 5.0
"""After a Redis failure, requests skip the limiter this long."""
LOG_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    """Requests in this window, this one included (0 when Redis was not asked)."""
    retry_after: int


class RateLimiter:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._skip_until = 0.0
        self._last_log = 0.0

    async def hit(self, key_name: str, limit: int, request_id: str = "") -> Verdict:
        now = time.time()
        if time.monotonic() < self._skip_until:
            return Verdict(True, 0, 0)
        window = int(now // WINDOW_SECONDS)
        redis_key = f"hookyard:rl:{key_name}:{window}"
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                count = await self._count(redis_key)
        except Exception as exc:  # noqa: BLE001 - any Redis failure means "fail open"
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            if time.monotonic() - self._last_log > LOG_EVERY_SECONDS:
                self._last_log = time.monotonic()
                log.warning(
                    "rate_limit_unavailable",
                    error=type(exc).__name__,
                    action="allowing requests uncounted",
                    request_id=request_id,
                )
            return Verdict(True, 0, 0)
        retry_after = max(1, min(WINDOW_SECONDS, math.ceil((window + 1) * WINDOW_SECONDS - now)))
        return Verdict(count <= limit, count, retry_after)

    async def _count(self, redis_key: str) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, WINDOW_SECONDS + 1)
            count, _ = await pipe.execute()
        return int(count)
