"""Worker liveness probe: `python -m workers.liveness`, exit 0 when this host runs a live RQ worker.

Workers serve no HTTP, so orchestrators probe them with this command. RQ
keeps a hash `rq:worker:<name>` per worker with its `hostname` and lets it
expire when heartbeats stop; a worker that has shut down gets a `death`
field. So "live" means: a registered worker on this host (a pod's hostname
is the pod name) whose heartbeat key has not expired and that has not
died. It proves the worker loop is heartbeating against Redis; it cannot
see a handler stuck inside its own time-out, which the job time-out covers.
"""

from __future__ import annotations

import socket
import sys

import redis

from schemas.settings import ConfigError, load_settings
from workers.shared.connections import redis_from_url

WORKERS_SET = "rq:workers"
"""RQ's set of registered worker keys."""


def live_workers(redis_client: redis.Redis, hostname: str) -> list[str]:
    """Names of registered, unexpired, not-dead RQ workers on `hostname`."""
    names = []
    for key in sorted(redis_client.smembers(WORKERS_SET)):
        host, death = redis_client.hmget(key, ["hostname", "death"])
        if host is not None and _text(host) == hostname and death is None:
            names.append(_text(key).removeprefix("rq:worker:"))
    return names


def _text(value: bytes | str) -> str:
    """RQ's client replies in bytes; one made with `decode_responses` in str."""
    return value.decode() if isinstance(value, bytes) else value


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"hookyard: {exc}\n")
        return 2
    client = redis_from_url(settings.redis.url, socket_timeout=settings.redis.socket_timeout_seconds)
    hostname = socket.gethostname()
    try:
        names = live_workers(client, hostname)
    except redis.RedisError as exc:
        sys.stderr.write(f"worker liveness: Redis unreachable: {exc}\n")
        return 1
    finally:
        client.close()
    if not names:
        sys.stderr.write(f"worker liveness: no live RQ worker registered from {hostname}\n")
        return 1
    sys.stdout.write(f"worker liveness: {len(names)} live on {hostname}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
