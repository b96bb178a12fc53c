"""The rejection ledger's writer: every refused ingest request counted, off the request's path.

Ingest calls `record()` once per rejection, on the event loop: a dict update,
no I/O. Every `FLUSH_SECONDS` a background task writes what gathered to the
`rejections` table in one transaction, in a worker thread. Equal
`(source, code, client_ip)` rejections within one second share a row whose
`count` says how many, so a flood from one address is one row a second.

Bounded whatever the flood: at most `MAX_ROWS` distinct rows wait at once
(so at most that many are written a second). Past that, a rejection is
merged into an overflow row per (source, code) with an empty `client_ip`
(a source name that is not configured counts as `*` there), so it is still
counted but adds no row. If the database is away the rows wait, still
bounded the same way, and go out with the next flush that works. Bodies are
never seen here; logs name counts only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from schemas.errors import HookyardError
from schemas.tables import RejectionRow
from workers.context import database_down

log = structlog.get_logger("hookyard.ingest.rejections")

FLUSH_SECONDS = 1.0
"""How often, in seconds, gathered rejections are written."""
MAX_ROWS = 100
"""Most distinct rows waiting at once, and so written per flush; further rejections merge into overflow rows."""
OVERFLOW_SOURCE = "*"
"""The source of an overflow row for a source name that is not configured."""
LOG_EVERY_SECONDS = 30.0
"""At most one "ledger not written" line per this many seconds."""

Key = tuple[int, str, str, str]
"""(second, source, code, client_ip); second -1 marks an overflow row."""


@dataclass
class Pending:
    status: int
    request_id: str
    received_at: float
    count: int


class RejectionLedger:
    def __init__(self, engine: Callable[[], Engine], known_sources: Collection[str], max_rows: int = MAX_ROWS) -> None:
        self._engine = engine
        self._known = frozenset(known_sources)
        self._max_rows = max_rows
        self._pending: dict[Key, Pending] = {}
        self._last_log = 0.0

    def record(self, source: str, error: HookyardError, client_ip: str, request_id: str) -> None:
        """Count one rejection (on the event loop: no I/O)."""
        now = time.time()
        self._add(
            (int(now), _printable(source[:64]), error.meta_code[:64], client_ip), error.status, request_id, now, 1
        )

    def _add(self, key: Key, status: int, request_id: str, received_at: float, count: int) -> None:
        pending = self._pending.get(key)
        if pending is None and len(self._pending) >= self._max_rows and key[0] != -1:
            source = key[1] if key[1] in self._known else OVERFLOW_SOURCE
            key = (-1, source, key[2], "")
            pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = Pending(status, request_id[:128], received_at, count)
        else:
            pending.count += count

    def waiting(self) -> int:
        """Rejections counted but not yet written."""
        return sum(pending.count for pending in self._pending.values())

    async def flush(self) -> int:
        """Write what gathered; on failure keep it for the next flush. Returns rows written."""
        batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception as exc:  # noqa: BLE001 - the database away must never fail ingest; retried next flush
            if not _unavailable(exc):  # rows the database refuses would block every later flush: drop, say so
                log.error(
                    "rejections_dropped", error=type(exc).__name__, rejections=sum(p.count for p in batch.values())
                )
                return 0
            for key, pending in batch.items():
                self._add(key, pending.status, pending.request_id, pending.received_at, pending.count)
            if time.monotonic() - self._last_log > LOG_EVERY_SECONDS:
                self._last_log = time.monotonic()
                log.warning("rejections_not_written", error=type(exc).__name__, waiting=self.waiting())
            return 0
        return len(batch)

    def _write(self, batch: dict[Key, Pending]) -> None:
        rows = [
            {
                "source": source,
                "status": pending.status,
                "code": code,
                "client_ip": client_ip,
                "request_id": pending.request_id,
                "received_at": datetime.fromtimestamp(pending.received_at, UTC),
                "count": pending.count,
            }
            for (_, source, code, client_ip), pending in batch.items()
        ]
        with self._engine().begin() as connection:
            connection.execute(insert(RejectionRow), rows)

    async def flush_forever(self) -> None:
        """The API process's writer task; cancelled at shutdown, after which `flush()` runs once more."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await asyncio.shield(self.flush())  # a cancel mid-write lets that write finish


def _printable(name: str) -> str:
    """A requested source name as it can be stored and shown: control characters (NUL too) become `?`."""
    return "".join(c if c.isprintable() else "?" for c in name)


def _unavailable(exc: BaseException) -> bool:
    """The database is away (keep the rows for the next flush), rather than refusing these rows."""
    return database_down(exc) or not isinstance(exc, DBAPIError)
