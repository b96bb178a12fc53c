"""On PostgreSQL, every list filter is served by an index, on page 1 and on a deep cursor page.

Enough rows are inserted, and ANALYZEd, that the planner would rather scan
the table than use a useless index; the filtered values are rare (about
1 % each), the case where only the filter's own index keeps page 1 and a
deep page cheap. The plans must name that index and never `Seq Scan`.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, text

from schemas.ids import new_event_id
from schemas.tables import EventRow
from service.api.filters import EventFilter
from service.api.reads import page_query

ROWS = 30_000
RARE_ACTIONS = ["USER:DELETED", "BOOKING:CREATED", "BOOKING:UPDATED", "ROOM:CREATED"]
"""About 1 % of rows each: the filters an index must serve (a common value is cheaper to scan for)."""
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded_postgres():
    import os  # noqa: PLC0415

    from tests.conftest import POSTGRES_ENV, migrate, postgres_schema  # noqa: PLC0415

    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} not set")
    with postgres_schema(os.environ[POSTGRES_ENV]) as url:
        migrate(url)
        engine = create_engine(url)
        rng = random.Random(7)
        rows = []
        for i in range(ROWS):
            received = NOW - timedelta(seconds=ROWS - i)
            action = rng.choice(RARE_ACTIONS) if rng.random() < 0.04 else "LOCATION:UPDATED"
            rows.append(
                {
                    "id": new_event_id(int(received.timestamp() * 1000)),
                    "source": "src3" if rng.random() < 0.01 else "main",
                    "fingerprint": uuid.uuid4().hex,
                    "action": action,
                    "resource": action.split(":")[0],
                    "verb": action.split(":")[-1],
                    "sent_at": int(received.timestamp()),
                    "received_at": received,
                    "stored_at": received,
                    "status": "failed" if rng.random() < 0.01 else "processed",
                    "request_id": "x",
                    "payload": "{}",
                    "body": "{}",
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(EventRow), rows)
            conn.execute(text("ANALYZE events"))
        yield engine
        engine.dispose()


def _plan(engine, where, order, after):
    query = page_query(where, order=order, limit=50, after=after, payload=False)
    compiled = query.compile(dialect=engine.dialect)
    with engine.connect() as conn:
        return "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params))


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("where", "index"),
    [
        (EventFilter(), "ix_events_received"),
        (EventFilter(source="src3"), "ix_events_source_received"),
        (EventFilter(action="USER:DELETED"), "ix_events_action_received"),
        (EventFilter(action="BOOKING:*"), "ix_events_resource_received"),
        (EventFilter(action="*:CREATED"), "ix_events_verb_received"),  # BOOKING:CREATED, ROOM:CREATED
        (EventFilter(status="failed"), "ix_events_status_received"),
        (EventFilter(since=NOW - timedelta(hours=1), until=NOW - timedelta(minutes=30)), "ix_events_received"),
    ],
)
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_each_filter_uses_its_index(seeded_postgres, where, index, order):
    deep = (NOW - timedelta(seconds=ROWS // 2), "01a20000-0000-7000-8000-000000000000")
    for after in (None, deep):
        plan = _plan(seeded_postgres, where, order, after)
        assert "Seq Scan on events" not in plan, plan
        assert index in plan, plan
