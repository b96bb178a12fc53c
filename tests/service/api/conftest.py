"""Read API fixtures: the real app in-process (lifespan included), real Redis and SQL.

The root conftest's per-test fixtures are pinned here (an empty Redis
database and a migrated SQLite/PostgreSQL schema per test), whatever a
sibling conftest chooses for other tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from schemas.ids import new_event_id
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus
from service.api.state import ApiState
from service.app import HookyardApp, create_app
from tests import conftest as root
from tests.conftest import ADMIN_KEY, READ_KEY, Config, gxm_body, gxm_headers
from workers.registry import Registry

# Pin the root's per-test Redis database and migrated SQL schema for these tests.
redis_url = root.redis_url
database_url = root.database_url

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
READ = {"X-API-Key": READ_KEY}


@pytest.fixture
def app(config: Config, registry: Registry) -> HookyardApp:
    """The app, sharing the test's handler registry with the in-process worker."""
    made = create_app(config.settings)
    made.api.state.api = ApiState.build(made.runtime, registry)
    return made


@pytest.fixture
def client(app: HookyardApp) -> Iterator[TestClient[Any]]:
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as test_client:  # type: ignore[arg-type]
        yield test_client


def ingest(client: TestClient[Any], action: str = "LOCATION:CREATED", payload: dict[str, Any] | None = None) -> str:
    """POST one signed event through the real ingest path; returns its id."""
    body = gxm_body(action=action, payload=payload if payload is not None else {"n": uuid.uuid4().hex})
    response = client.post("/webhooks/gxm", content=body, headers=gxm_headers())
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


Insert = Callable[..., list[str]]


@pytest.fixture
def insert_events(config: Config) -> Iterator[Insert]:
    """Bulk rows straight into the tables, for pagination and EXPLAIN tests."""
    bulk_engine = create_engine(config.settings.database.url)

    def insert(
        count: int,
        *,
        start: datetime | None = None,
        step: timedelta = timedelta(seconds=1),
        source: str = "gxm",
        action: str = "LOCATION:CREATED",
        status: str = EventStatus.PROCESSED,
        deliveries: dict[str, str] | None = None,
    ) -> list[str]:
        start = start or datetime.now(UTC) - timedelta(hours=1)
        rows, ids = [], []
        for i in range(count):
            received = start + step * i
            event_id = new_event_id(int(received.timestamp() * 1000))
            parts = action.split(":")
            rows.append(
                EventRow(
                    id=event_id,
                    source=source,
                    fingerprint=uuid.uuid4().hex,
                    action=action,
                    resource=parts[0],
                    verb=parts[-1],
                    sent_at=int(received.timestamp()),
                    received_at=received,
                    stored_at=received,
                    status=status,
                    request_id="test",
                    payload=f'{{"i": {i}}}',
                    body="{}",
                )
            )
            ids.append(event_id)
        with Session(bulk_engine) as session, session.begin():
            session.add_all(rows)
            session.flush()
            for event_id in ids:
                for handler, delivery_status in (deliveries or {}).items():
                    session.add(
                        DeliveryRow(
                            event_id=event_id,
                            handler=handler,
                            status=delivery_status,
                            attempts=1 if delivery_status != DeliveryStatus.PENDING else 0,
                            max_attempts=1,
                            last_error="boom" if delivery_status == DeliveryStatus.DEAD else None,
                            created_at=start,
                            updated_at=start,
                        )
                    )
        return ids

    yield insert
    bulk_engine.dispose()
