"""The spool on its own: fsync'd writes, duplicates while spooled, unreadable rows set aside."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from schemas.wire import QueuedEvent
from service.ingest.spool import Spool


def _event(n: int, fingerprint: str | None = None) -> QueuedEvent:
    return QueuedEvent(f"id-{n}", "gxm", fingerprint or f"fp-{n}", 1, "rid", '{"data": {}}')


def test_a_redelivery_while_spooled_answers_with_the_first_id(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    assert spool.put_many([_event(1), _event(2)]) == ["", ""]
    assert spool.put_many([_event(3, fingerprint="fp-1"), _event(4)]) == ["id-1", ""]
    assert [event.id for _, event in spool.peek(10)] == ["id-1", "id-2", "id-4"]


def test_an_unreadable_row_is_quarantined_not_blocking(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.put_many([_event(1)])
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO spooled_events (source, fingerprint, event_id, event) VALUES ('gxm', 'x', 'bad', ?)",
            (b'["too","short"]',),
        )
    spool.put_many([_event(2)])
    assert [event.id for _, event in spool.peek(10)] == ["id-1", "id-2"]
    assert spool.count() == 2
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*) from spool_quarantine").fetchone() == (1,)


def test_delete_through_trims_only_what_was_drained(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.put_many([_event(n) for n in range(5)])
    rows = spool.peek(3)
    spool.delete_through(rows[-1][0])
    assert [event.id for _, event in spool.peek(10)] == ["id-3", "id-4"]
