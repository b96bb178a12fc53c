"""Which claimed delivery a worker process was running when it died, for its supervisor.

Deliveries are claimed a batch at a time (attempt counted, lease set) and
then run one by one. If a handler kills the process (`os._exit`, a segfault,
the OOM killer), every delivery of the batch would be charged that attempt,
though only one was running. So the worker keeps a tiny file per process:
the (id, attempts) pairs it claimed, then the index of the handler it is
starting (`os.pwrite`, no fsync: the page cache outlives the process, and a
lost file only means the old, pessimistic accounting). When a child dies,
the supervisor gives the never-started deliveries their attempt back and
releases their lease (`workers.lease.give_back`); the culprit stays leased,
so it runs alone next time (a "suspect") and alone uses up its attempts.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

_HEAD = struct.Struct("<qI")  # index of the running delivery (-1: none), number of claimed
_ITEM = struct.Struct("<qI")  # delivery id, attempts as claimed


class Progress:
    """Written by a worker process; a no-op without a path (tests, `--burst` runs)."""

    def __init__(self, path: str | Path | None) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600) if path else None

    def claimed(self, items: Sequence[tuple[int, int]]) -> None:
        if self._fd is not None:
            data = _HEAD.pack(-1, len(items)) + b"".join(_ITEM.pack(i, a) for i, a in items)
            os.pwrite(self._fd, data, 0)

    def starting(self, index: int) -> None:
        if self._fd is not None:
            os.pwrite(self._fd, struct.pack("<q", index), 0)

    def finished(self) -> None:
        if self._fd is not None:
            os.pwrite(self._fd, _HEAD.pack(-1, 0), 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def never_started(path: Path) -> list[tuple[int, int]]:
    """The claimed deliveries after the one that was running when the process died."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    if len(data) < _HEAD.size:
        return []
    running, count = _HEAD.unpack_from(data)
    if running < 0 or len(data) < _HEAD.size + count * _ITEM.size:
        return []
    items = [_ITEM.unpack_from(data, _HEAD.size + n * _ITEM.size) for n in range(count)]
    return [(int(i), int(a)) for i, a in items[running + 1 :]]
