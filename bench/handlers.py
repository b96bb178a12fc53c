"""The bench's one handler: `*`, does nothing, except note when it started for end-to-end runs.

An event whose payload carries `bench_t0` (the sender's `time.time()` just
before it wrote the request) gets its POST-to-handler-start latency appended
as one line to the file named by `BENCH_E2E_FILE` (O_APPEND: several worker
processes may share it). Drain events carry no `bench_t0`, so for them the
handler is a true no-op.
"""

from __future__ import annotations

import os
import time

from workers import Event, handler

_fd: int | None = None


@handler("*", name="bench")
def bench_handler(event: Event) -> None:
    global _fd
    started = time.time()
    sent = event.payload.get("bench_t0")
    if isinstance(sent, float) and event.attempt == 1:
        if _fd is None:
            _fd = os.open(os.environ["BENCH_E2E_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(_fd, f"{started:.6f} {started - sent:.6f}\n".encode())
