"""The local durable spool: accepted events wait here while Redis is unreachable.

A SQLite file in WAL mode with `synchronous=FULL`, so an event is fsync'd
before its 202 is sent. Several API processes on one host may share the file;
SQLite's locking keeps their writes apart. The drainer moves rows to Redis in
insertion order and deletes them only after Redis holds them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec

from schemas.wire import QueuedEvent

_decode = msgspec.json.Decoder(QueuedEvent).decode
_encode = msgspec.json.Encoder().encode


class SpoolError(Exception):
    """The spool could not be written or read (disk full, permissions, corruption)."""


class Spool:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, event BLOB NOT NULL)"
                )
            except (sqlite3.Error, OSError) as exc:
                raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def put_many(self, events: Sequence[QueuedEvent]) -> None:
        try:
            conn = self._connection()
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO spool (event) VALUES (?)", [(_encode(e),) for e in events])
        except (sqlite3.Error, OSError) as exc:
            self._reset()
            raise SpoolError(f"cannot write spool {self.path}: {exc}") from exc

    def peek(self, limit: int) -> list[tuple[int, QueuedEvent]]:
        if not self.path.exists():
            return []
        try:
            rows = self._connection().execute("SELECT seq, event FROM spool ORDER BY seq LIMIT ?", (limit,)).fetchall()
        except sqlite3.Error as exc:
            self._reset()
            raise SpoolError(f"cannot read spool {self.path}: {exc}") from exc
        return [(seq, _decode(blob)) for seq, blob in rows]

    def delete_through(self, seq: int) -> None:
        try:
            conn = self._connection()
            with conn:
                conn.execute("DELETE FROM spool WHERE seq <= ?", (seq,))
        except sqlite3.Error as exc:
            self._reset()
            raise SpoolError(f"cannot trim spool {self.path}: {exc}") from exc

    def count(self) -> int:
        """Events waiting; opening the file also proves the spool is writable."""
        try:
            row = self._connection().execute("SELECT count(*) FROM spool").fetchone()
        except sqlite3.Error as exc:
            self._reset()
            raise SpoolError(f"cannot read spool {self.path}: {exc}") from exc
        return int(row[0])

    def _reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
