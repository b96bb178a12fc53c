"""On PostgreSQL, `/v1/deliveries` (and so the dead letters) is served by its indexes on page 1 and deep pages,
and the dead-letter groups are a skip scan, never a pass over every delivery."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from service.api.filters import DeliveryFilter
from service.api.reads import HANDLER_NAMES, delivery_page_query

ROWS = 30_000
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

_SEED = """
INSERT INTO events (id, source, fingerprint, action, resource, verb, sent_at, received_at, stored_at, status,
                    request_id, payload, body)
SELECT lpad(to_hex(g), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(g), 12, '0'), 'gxm', md5(g::text),
       'LOCATION:UPDATED', 'LOCATION', 'UPDATED', 0, :now - make_interval(secs => :rows - g),
       :now - make_interval(secs => :rows - g), 'processed', 'x', '{}', '{}'
FROM generate_series(1, :rows) AS g;
INSERT INTO deliveries (event_id, handler, status, attempts, max_attempts, created_at, updated_at)
SELECT id, CASE WHEN seq % 3 = 0 THEN 'crm' ELSE 'audit' END,
       CASE WHEN seq % 100 = 0 THEN 'dead' ELSE 'succeeded' END, 1, 5, received_at, received_at
FROM events;
"""


@pytest.fixture(scope="module")
def seeded_postgres():
    from tests.conftest import POSTGRES_ENV, migrate, postgres_schema  # noqa: PLC0415

    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} not set")
    with postgres_schema(os.environ[POSTGRES_ENV]) as url:
        migrate(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            for statement in _SEED.split(";"):
                if statement.strip():
                    conn.execute(text(statement), {"rows": ROWS, "now": NOW})
            conn.execute(text("ANALYZE events"))
            conn.execute(text("ANALYZE deliveries"))
        yield engine
        engine.dispose()


def _plan(engine, sql, params) -> str:
    with engine.connect() as conn:
        return "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params))


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("where", "index"),
    [
        (DeliveryFilter(), "ix_deliveries_updated"),
        (DeliveryFilter(status="dead"), "ix_deliveries_status_updated"),
        (DeliveryFilter(handler="crm", status="dead"), "ix_deliveries_handler_status_updated"),
    ],
)
def test_each_delivery_filter_uses_its_index(seeded_postgres, where, index):
    deep = (NOW - timedelta(seconds=ROWS // 2), 123)
    for after in (None, deep):
        query = delivery_page_query(where, order="desc", limit=50, after=after)
        compiled = query.compile(dialect=seeded_postgres.dialect)
        plan = _plan(seeded_postgres, str(compiled), compiled.params)
        assert "Seq Scan on deliveries" not in plan, plan
        assert index in plan, plan


@pytest.mark.postgres
def test_dead_letter_groups_skip_scan_the_handler_index(seeded_postgres):
    compiled = HANDLER_NAMES.compile(dialect=seeded_postgres.dialect)
    plan = _plan(seeded_postgres, str(compiled), {})
    assert "Seq Scan on deliveries" not in plan, plan
    assert "ix_deliveries_handler_status_updated" in plan, plan
