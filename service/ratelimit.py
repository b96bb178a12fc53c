"""Per-source ingest rate limits, counted in Redis so every API replica shares one budget.

A fixed window per source that starts with the window's first request and
lasts 60 s: one Lua call does INCR, sets the expiry on the first hit and
reads what is left, so `Retry-After` is exact and two replicas never race.
Ingest asks only after the signature check (strangers cannot spend a
vendor's budget) and only for sources with `rate_per_minute`; a source
without a limit costs no round trip. If Redis cannot answer, the request is
let through: the enqueue path then spools it, and losing an event is worse
than a burst.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis
import redis.exceptions
import structlog

log = structlog.get_logger("hookyard.ratelimit")

WINDOW_SECONDS = 60
"""Length of one counting window, in seconds."""

_LUA = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


def limit_key(source: str) -> str:
    return f"hookyard:rl:ingest:{source}"


class Verdict(msgspec.Struct, frozen=True):
    allowed: bool
    count: int
    retry_after: int
    """Seconds until the window resets (1 to 60)."""


class IngestLimiter:
    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(_LUA)

    async def hit(self, source: str, per_minute: int) -> Verdict:
        """Count one request against `source`; allowed while the window holds at most `per_minute`."""
        try:
            count, ttl = await self._script(keys=[limit_key(source)], args=[WINDOW_SECONDS])
        except (redis.exceptions.RedisError, OSError) as exc:
            log.warning("ratelimit_unavailable", source=source, error=str(exc))
            return Verdict(allowed=True, count=0, retry_after=0)
        count, ttl = int(count), max(1, min(WINDOW_SECONDS, int(ttl)))
        return Verdict(allowed=count <= per_minute, count=count, retry_after=ttl)
