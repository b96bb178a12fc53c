"""The rejection ledger's writer on real SQLite and PostgreSQL: merged, bounded, never lost to an outage."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.engine import Engine

from schemas.errors import BadSignature, NotFound
from schemas.tables import RejectionRow
from service.ingest.rejections import OVERFLOW_SOURCE, RejectionLedger


def _rows(engine: Engine) -> list[tuple[str, int, str, str, int]]:
    with engine.connect() as conn:
        found = conn.execute(
            select(
                RejectionRow.source, RejectionRow.status, RejectionRow.code, RejectionRow.client_ip, RejectionRow.count
            )
        ).all()
    return sorted(tuple(row) for row in found)


def test_equal_rejections_share_a_row_with_their_count(engine):
    ledger = RejectionLedger(lambda: engine, ["gxm"])
    for i in range(5):
        ledger.record("gxm", BadSignature("bad"), "203.0.113.7", f"req-{i}")
    ledger.record("gxm", BadSignature("bad"), "203.0.113.8", "req-other")
    ledger.record("nope", NotFound("no such source"), "203.0.113.7", "req-404")
    assert ledger.waiting() == 7
    assert asyncio.run(ledger.flush()) in (3, 4, 5, 6)  # 3 keys, unless the second ticked over meanwhile
    rows = _rows(engine)
    totals: dict[tuple[str, int, str, str], int] = {}
    for source, status, code, ip, count in rows:
        totals[(source, status, code, ip)] = totals.get((source, status, code, ip), 0) + count
    assert totals == {
        ("gxm", 401, "ERR:MSG:SIGNATURE", "203.0.113.7"): 5,
        ("gxm", 401, "ERR:MSG:SIGNATURE", "203.0.113.8"): 1,
        ("nope", 404, "ERR:MSG:NOT_FOUND", "203.0.113.7"): 1,
    }
    assert ledger.waiting() == 0
    with engine.connect() as conn:
        first = conn.execute(
            select(RejectionRow.request_id).where(RejectionRow.client_ip == "203.0.113.8")
        ).scalar_one()
    assert first == "req-other"


def test_a_flood_from_many_addresses_is_counted_in_bounded_rows(engine):
    ledger = RejectionLedger(lambda: engine, ["gxm"], max_rows=5)
    for i in range(2000):
        ledger.record("gxm", BadSignature("bad"), f"10.0.{i // 250}.{i % 250}", f"req-{i}")
        ledger.record(f"scan-{i}", NotFound("no such source"), "198.51.100.1", f"scan-{i}")
    asyncio.run(ledger.flush())
    rows = _rows(engine)
    assert len(rows) <= 5 + 2  # the first distinct rows, then one overflow row per (source, code)
    assert sum(row[-1] for row in rows) == 4000
    overflow = {(source, ip): count for source, _, _, ip, count in rows if ip == "" or source == OVERFLOW_SOURCE}
    assert overflow[("gxm", "")] >= 2000 - 5
    assert overflow[(OVERFLOW_SOURCE, "")] >= 2000 - 5  # unconfigured names fold into one source


def test_rows_wait_while_the_database_is_away_then_go_out(engine):
    broken = {"yes": True}

    def current() -> Engine:
        if broken["yes"]:
            raise OSError("database unreachable")
        return engine

    ledger = RejectionLedger(current, ["gxm"], max_rows=3)
    for i in range(10):
        ledger.record("gxm", BadSignature("bad"), f"203.0.113.{i}", f"req-{i}")
    assert asyncio.run(ledger.flush()) == 0
    assert ledger.waiting() == 10
    broken["yes"] = False
    assert asyncio.run(ledger.flush()) >= 1
    assert sum(row[-1] for row in _rows(engine)) == 10


def test_a_source_name_with_control_characters_is_stored_readably(engine):
    ledger = RejectionLedger(lambda: engine, ["gxm"])
    ledger.record("bad\x00name\n", NotFound("no such source"), "203.0.113.7", "req")
    assert asyncio.run(ledger.flush()) == 1
    assert [row[0] for row in _rows(engine)] == ["bad?name?"]
