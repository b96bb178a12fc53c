"""Fixed-window rate limits in Redis, so every API replica counts against the same number.

One limiter for both uses: per-source ingest limits (`rate_per_minute` on a
source, counted after the signature check, so strangers cannot spend a
vendor's budget) and per-key `/v1` limits. A window starts with its first
request and lasts `WINDOW_SECONDS`: one Lua call does INCR, sets the expiry on
the first hit and reads what is left, so `Retry-After` is exact and two
replicas never race.

When Redis does not answer within `TIMEOUT_SECONDS` the limiter fails open
(losing an event or a dashboard is worse than a burst; ingest then spools),
says so in a log line at most every `LOG_EVERY_SECONDS`, and skips Redis for
`BACKOFF_SECONDS`, so a paused Redis costs one time-out, not one per request.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import redis.asyncio as aioredis
import structlog

log = structlog.get_logger("hookyard.limiter")

WINDOW_SECONDS = 60
"""Length of one counting window, in seconds."""
TIMEOUT_SECONDS = 0.25
"""Longest a request waits for Redis, in seconds, before it is let through uncounted."""
BACKOFF_SECONDS = 5.0
"""After a Redis failure, requests skip the limiter this many seconds."""
LOG_EVERY_SECONDS = 30.0
"""At most one "limits not enforced" line per this many seconds."""

_LUA = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


def limit_key(scope: str, name: str) -> str:
    """`hookyard:rl:ingest:<source>` or `hookyard:rl:api:<key name>`."""
    return f"hookyard:rl:{scope}:{name}"


class Verdict(msgspec.Struct, frozen=True):
    allowed: bool
    count: int
    """Requests in this window, this one included (0 when Redis was not asked)."""
    retry_after: int
    """Seconds until the window resets (1 to 60; 0 when Redis was not asked)."""


_UNCOUNTED = Verdict(allowed=True, count=0, retry_after=0)


class Limiter:
    def __init__(self, client: aioredis.Redis, scope: str) -> None:
        self._script = client.register_script(_LUA)
        self._scope = scope
        self._skip_until = 0.0
        self._last_log = 0.0

    async def hit(self, name: str, per_minute: int, request_id: str = "") -> Verdict:
        """Count one request against `name`; allowed while the window holds at most `per_minute`."""
        if time.monotonic() < self._skip_until:
            return _UNCOUNTED
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                count, ttl = await self._script(keys=[limit_key(self._scope, name)], args=[WINDOW_SECONDS])
        except Exception as exc:  # noqa: BLE001 - any Redis failure means "fail open"
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            # Once per back-off window at most: what shows that a paused Redis costs one wait, not one per request.
            log.debug("rate_limit_redis_failed", scope=self._scope, error=type(exc).__name__, request_id=request_id)
            if time.monotonic() - self._last_log > LOG_EVERY_SECONDS:
                self._last_log = time.monotonic()
                log.warning(
                    "rate_limit_unavailable",
                    scope=self._scope,
                    error=type(exc).__name__,
                    action="allowing requests uncounted",
                    request_id=request_id,
                )
            return _UNCOUNTED
        count, ttl = int(count), max(1, min(WINDOW_SECONDS, int(ttl)))
        return Verdict(allowed=count <= per_minute, count=count, retry_after=ttl)
