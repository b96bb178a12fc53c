"""The local durable spool: accepted events wait here while Redis is unreachable.

A SQLite file in WAL mode with `synchronous=FULL`, so an event is fsync'd
before its 202 is sent. Several API processes on one host may share the file;
SQLite's locking keeps their writes apart. The drainer moves rows to Redis in
insertion order and deletes them only after Redis holds them.

A re-delivery that arrives while its first copy is still spooled is answered
as a duplicate of it (`UNIQUE(source, fingerprint)`), and a row that can no
longer be decoded (written by another version) is moved aside to
`spool_quarantine` rather than blocking every event behind it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import msgspec
import structlog

from schemas.wire import QueuedEvent

log = structlog.get_logger("hookyard.spool")
_decode = msgspec.json.Decoder(QueuedEvent).decode
_encode = msgspec.json.Encoder().encode
T = TypeVar("T")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event BLOB NOT NULL,
    UNIQUE (source, fingerprint)
);
CREATE TABLE IF NOT EXISTS spool_quarantine (seq INTEGER PRIMARY KEY, event BLOB NOT NULL, error TEXT NOT NULL);
"""


class SpoolReport(msgspec.Struct, kw_only=True):
    """What `hookyard spool` reports about one spool file."""

    path: str
    waiting: int
    """Events waiting for Redis (a running `serve` drains them)."""
    quarantined: int
    """Rows set aside because they did not decode."""
    redriven: int = 0
    """Rows `redrive` put back in line."""


class SpoolError(Exception):
    """The spool could not be written or read (disk full, permissions, corruption)."""


class Spool:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None

    async def call(self, method: Callable[..., T], *args: object) -> T:
        """Run one of these (blocking, fsync'ing) methods off the event loop, on the spool's own thread:
        never the default pool, where database readers could keep a 202 waiting."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookyard-spool")
        return await asyncio.get_running_loop().run_in_executor(self._executor, method, *args)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def put_many(self, events: Sequence[QueuedEvent]) -> list[str]:
        """Write and fsync; for each event '' if spooled now, else the id of the spooled copy it repeats."""
        with self._failing("write", OSError):
            conn = self._connection()
            firsts: list[str] = []
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for event in events:
                    inserted = conn.execute(
                        "INSERT INTO spooled_events (source, fingerprint, event_id, event) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (source, fingerprint) DO NOTHING",
                        (event.source, event.fingerprint, event.id, _encode(event)),
                    ).rowcount
                    if inserted:
                        firsts.append("")
                        continue
                    row = conn.execute(
                        "SELECT event_id FROM spooled_events WHERE source = ? AND fingerprint = ?",
                        (event.source, event.fingerprint),
                    ).fetchone()
                    firsts.append(str(row[0]))
            return firsts

    def peek(self, limit: int) -> list[tuple[int, QueuedEvent]]:
        if not self.path.exists():
            return []
        with self._failing("read"):
            conn = self._connection()
            rows = conn.execute("SELECT seq, event FROM spooled_events ORDER BY seq LIMIT ?", (limit,)).fetchall()
            decoded: list[tuple[int, QueuedEvent]] = []
            for seq, blob in rows:
                try:
                    decoded.append((seq, _decode(blob)))
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    self._quarantine(conn, seq, blob, str(exc))
        return decoded

    def _quarantine(self, conn: sqlite3.Connection, seq: int, blob: bytes, error: str) -> None:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO spool_quarantine VALUES (?, ?, ?)", (seq, blob, error))
            conn.execute("DELETE FROM spooled_events WHERE seq = ?", (seq,))
        log.error("spool_row_quarantined", seq=seq, error=error[:200])

    def delete_through(self, seq: int) -> None:
        with self._failing("trim"):
            conn = self._connection()
            with conn:
                conn.execute("DELETE FROM spooled_events WHERE seq <= ?", (seq,))

    def count(self) -> int:
        """Events waiting; opening the file also proves the spool is writable."""
        return self._count("SELECT count(*) FROM spooled_events")

    def quarantined(self) -> int:
        """Rows moved aside because they no longer decode: acknowledged events waiting for `hookyard spool redrive`."""
        if not self.path.exists():
            return 0
        return self._count("SELECT count(*) FROM spool_quarantine")

    def _count(self, query: str) -> int:
        with self._failing("read"):
            row = self._connection().execute(query).fetchone()
        return int(row[0])

    def redrive(self) -> tuple[int, int]:
        """Put quarantined rows that decode now (after an upgrade or a fix) back in line, in their
        original order; returns (moved back, still undecodable)."""
        with self._failing("redrive", OSError):
            conn = self._connection()
            moved = left = 0
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for seq, blob in conn.execute("SELECT seq, event FROM spool_quarantine ORDER BY seq").fetchall():
                    try:
                        event = _decode(blob)
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        left += 1
                        continue
                    conn.execute(
                        "INSERT INTO spooled_events (seq, source, fingerprint, event_id, event) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT DO NOTHING",
                        (seq, event.source, event.fingerprint, event.id, blob),
                    )
                    conn.execute("DELETE FROM spool_quarantine WHERE seq = ?", (seq,))
                    moved += 1
            return moved, left

    @contextmanager
    def _failing(self, doing: str, *also: type[Exception]) -> Iterator[None]:
        """An SQLite error (or one of `also`) while `doing` is a `SpoolError`; the connection is dropped,
        so the next call opens the file again."""
        caught: tuple[type[Exception], ...] = (sqlite3.Error, *also)
        try:
            yield
        except caught as exc:
            self._reset()
            raise SpoolError(f"cannot {doing} spool {self.path}: {exc}") from exc

    def _reset(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
