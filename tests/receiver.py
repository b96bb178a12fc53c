"""A real HTTP receiver on 127.0.0.1 for forward tests: records every request, answers as scripted.

`answers[path]` is a list of (status, headers) popped one per request; when
it is empty (or the path has none) the answer is 200. A `delay` entry in the
headers is not sent: the answer waits that many seconds instead. HTTP/1.1 keep-alive, so
the forward's pooled connections are exercised as in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    port: int
    answers: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, path: str) -> tuple[int, dict[str, str]]:
        with self.lock:
            queued = self.answers.get(path)
            return queued.pop(0) if queued else (200, {})


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            with state.lock:
                state.requests.append(Received(self.path, headers, body, time.monotonic()))
            status, extra = state.answer(self.path)
            extra = dict(extra)
            time.sleep(float(extra.pop("delay", "0")))
            answer = b"ok" if status < 300 else f"status {status}".encode()
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return

    with serving(Handler) as server:
        state.port = server.server_address[1]
        yield state


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A threaded HTTP server on a free port of 127.0.0.1, stopped on exit (test receivers share it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
