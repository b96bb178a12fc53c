"""Redis clients from one URL, including Redis Sentinel for failover.

redis-py understands `redis://`, `rediss://` and `unix://` itself; it has no
URL form for Sentinel, so `redis+sentinel://` is parsed here:

    redis+sentinel://[[user:]password@]host[:port][,host[:port]...]/service_name[/db][?sentinel_password=...]

The password is the master's. Sentinels are asked without one unless
`sentinel_password` is given. The client follows failovers: every new
connection asks the sentinels where the master is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

SENTINEL_SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelURL:
    """A parsed `redis+sentinel://` URL."""

    hosts: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Split a `redis+sentinel://` URL; a malformed one raises ValueError naming the part."""
    if not url.startswith(SENTINEL_SCHEME):
        raise ValueError(f"not a {SENTINEL_SCHEME} URL: {url!r}")
    rest, _, query = url.removeprefix(SENTINEL_SCHEME).partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = (unquote(user) or None, unquote(secret)) if colon else (None, unquote(user))
    hosts = tuple(_host_port(part) for part in hostlist.split(","))
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise ValueError(f"sentinel URL needs /service_name[/db], got /{path!r}")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"sentinel URL database must be a number, got {parts[1]!r}")
        db = int(parts[1])
    options = parse_qs(query)
    unknown = set(options) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"sentinel URL: unknown option {sorted(unknown)[0]!r}")
    sentinel_password = options.get("sentinel_password", [None])[-1]
    return SentinelURL(hosts, unquote(parts[0]), db, username, password, sentinel_password)


def _host_port(text: str) -> tuple[str, int]:
    if not text:
        raise ValueError("sentinel URL needs at least one host")
    if text.startswith("["):  # [::1]:26379
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"sentinel URL: empty host in {text!r}")
    if port and not port.isdigit():
        raise ValueError(f"sentinel URL: port of {text!r} is not a number")
    return host, int(port) if port else DEFAULT_SENTINEL_PORT


def redis_from_url(
    url: str, *, socket_timeout: float, connect_timeout: float | None = None, **options: Any
) -> redis.Redis:
    """A sync client (bytes replies, as RQ needs) whose every call is bounded by `socket_timeout`."""
    connect_timeout = socket_timeout if connect_timeout is None else connect_timeout
    if url.startswith(SENTINEL_SCHEME):
        parsed = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(parsed.hosts),
            sentinel_kwargs=_sentinel_kwargs(parsed, socket_timeout),
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            parsed.service_name, db=parsed.db, username=parsed.username, password=parsed.password, **options
        )
        return client
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout, **options)


def async_redis_from_url(url: str, *, socket_timeout: float, **options: Any) -> redis.asyncio.Redis:
    """The `redis.asyncio` twin of `redis_from_url`, for the API's event loop."""
    if url.startswith(SENTINEL_SCHEME):
        parsed = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.hosts),
            sentinel_kwargs=_sentinel_kwargs(parsed, socket_timeout),
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
        async_client: redis.asyncio.Redis = sentinel.master_for(
            parsed.service_name, db=parsed.db, username=parsed.username, password=parsed.password, **options
        )
        return async_client
    return redis.asyncio.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout, **options
    )


def _sentinel_kwargs(parsed: SentinelURL, socket_timeout: float) -> dict[str, object]:
    kwargs: dict[str, object] = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout}
    if parsed.sentinel_password is not None:
        kwargs["password"] = parsed.sentinel_password
    return kwargs
