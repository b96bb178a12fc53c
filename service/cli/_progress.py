"""Progress of a long command (replay, purge): a rich bar on a terminal, periodic lines otherwise.

Written to stderr, so stdout keeps only the command's result (and stays
parseable). Off a terminal (a CI job, a CronJob's log) a bar would be noise:
one line every `LOG_EVERY_SECONDS` and a last one when the work is done.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

LOG_EVERY_SECONDS = 5.0
"""Off a terminal, at most one progress line this often (plus the last one)."""


class Progress:
    """`with Progress("hookyard replay", total, "events") as progress: progress.advance(n)`."""

    def __init__(
        self, what: str, total: int, unit: str, *, stream: IO[str] | None = None, every: float = LOG_EVERY_SECONDS
    ) -> None:
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.stream = stream or sys.stderr
        self.done = 0
        self._reported = -1
        self._started = self._logged = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.stream.isatty():
            from rich.console import Console  # noqa: PLC0415 - only on a terminal
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn  # noqa: PLC0415
            from rich.progress import Progress as Bar  # noqa: PLC0415

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
                # Results printed meanwhile go above the bar when stdout is this terminal too;
                # when stdout is a file or a pipe they must stay there, not move to the terminal.
                redirect_stdout=sys.stdout.isatty(),
                redirect_stderr=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total or None)
        return self

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.monotonic()
        if now - self._logged >= self.every:
            self._logged = now
            self._line()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif kind is None and self._reported != self.done:  # the last count, unless just printed
            self._line()

    def _line(self) -> None:
        self._reported = self.done
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        elapsed = time.monotonic() - self._started
        line = f"{self.what}: {self.done}/{self.total} {self.unit}{share}, {elapsed:.1f} s"
        print(line, file=self.stream, flush=True)
