"""The progress file: which claimed delivery a worker process was running (give-back itself: test_lease.py)."""

from __future__ import annotations

from pathlib import Path

from workers.progress import Progress, never_started


def test_a_finished_batch_leaves_nothing_to_give_back(tmp_path: Path) -> None:
    progress = Progress(tmp_path / "progress")
    progress.claimed([(1, 1), (2, 1)])
    progress.starting(0)
    progress.starting(1)
    progress.finished()
    assert never_started(tmp_path / "progress") == []
    assert never_started(tmp_path / "missing") == []
