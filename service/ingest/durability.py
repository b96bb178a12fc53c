"""Does Redis put a write on disk before it answers? What a 202 may promise depends on it.

CONTRACT section 9: on Redis 7.2 or newer with AOF on, ingest follows each
enqueue with `WAITAOF 1 0` (`service.ingest.enqueue`), so a 202 waits for the
fsync whatever `appendfsync` says. On an older Redis only `appendfsync always`
fsyncs before answering; with `everysec` a crash loses up to a second of
acknowledged events, and without AOF everything since the last snapshot.

`Fsync` is what one look at the server found (`INFO server`, `CONFIG GET`):
`/health/ready` is `degraded` and names its `risk` when the answer is no, and
`[redis] require_fsync = true` makes `serve` refuse to start on it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis

WAITAOF_SINCE = (7, 2)
"""The first Redis version with WAITAOF (Valkey reports a `redis_version` of 7.2.4 or later)."""


class Fsync(msgspec.Struct, frozen=True):
    """Redis's persistence as read at one moment; `known` is False until a read succeeded."""

    known: bool = False
    version: tuple[int, ...] = ()
    appendonly: bool = False
    appendfsync: str = ""
    """`always`, `everysec`, `no`, or '' when `CONFIG GET` was refused (a managed Redis may rename it)."""

    @property
    def waitaof(self) -> bool:
        """Ingest can ask this Redis to confirm each fsync (Redis >= 7.2 with AOF on)."""
        return self.known and self.appendonly and self.version >= WAITAOF_SINCE

    @property
    def guaranteed(self) -> bool:
        """A write is fsynced before its 202: `always`, or WAITAOF with `everysec` (under `no`, Redis
        confirms a write() as if it were an fsync, and an unreadable setting could be `no`)."""
        if not (self.known and self.appendonly):
            return False
        return self.appendfsync == "always" or (self.waitaof and self.appendfsync == "everysec")

    @property
    def risk(self) -> str:
        """'' when a 202 means on disk (or nothing is known yet), else what a crash would lose."""
        if not self.known or self.guaranteed:
            return ""
        version = ".".join(map(str, self.version))
        if not self.appendonly:
            return f"Redis {version} runs without AOF: a Redis crash loses acknowledged events"
        if self.appendfsync == "":
            return f"Redis {version}: appendfsync unreadable (CONFIG GET refused), fsync not guaranteed"
        if self.appendfsync == "no":
            return f"Redis {version} with appendfsync no: the OS decides when acknowledged events reach the disk"
        return (
            f"Redis {version} with appendfsync {self.appendfsync} and no WAITAOF (needs 7.2): "
            "a Redis crash loses up to a second of acknowledged events; set appendfsync always"
        )


def parse(info: dict[str, Any], config: dict[Any, Any] | None) -> Fsync:
    """Build `Fsync` from `INFO server` plus `INFO persistence` and `CONFIG GET append*` (None if refused)."""
    raw_version = str(info.get("redis_version", "0"))
    version = tuple(int(part) for part in raw_version.split(".") if part.isdigit())
    appendonly = bool(int(info.get("aof_enabled", 0)))
    fsync = ""
    if config is not None:
        decoded = {_text(key): _text(value) for key, value in config.items()}
        fsync = decoded.get("appendfsync", "")
    return Fsync(known=True, version=version, appendonly=appendonly, appendfsync=fsync)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read(client: redis.Redis) -> Fsync:
    """Read it with a sync client (`serve`'s start-up check); Redis errors propagate."""
    info = {**client.info("server"), **client.info("persistence")}
    try:
        config: dict[Any, Any] | None = client.config_get("appendfsync")
    except redis.exceptions.ResponseError:
        config = None
    return parse(info, config)


async def aread(client: aioredis.Redis) -> Fsync:
    """`read` on the event loop (the API's periodic check)."""
    info = {**await client.info("server"), **await client.info("persistence")}
    try:
        config: dict[Any, Any] | None = await client.config_get("appendfsync")
    except redis.exceptions.ResponseError:
        config = None
    return parse(info, config)
