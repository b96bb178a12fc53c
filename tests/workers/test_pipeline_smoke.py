"""The shortest whole path: POST to a real server, drain in-process, the handler ran."""

from __future__ import annotations

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import Config, Worker, gxm_body, gxm_headers
from workers.event import Event
from workers.registry import Registry


def test_posted_event_is_stored_and_handled(config: Config, server: str, worker: Worker, registry: Registry) -> None:
    seen: list[Event] = []
    registry.handler("LOCATION:*", name="collect")(seen.append)

    response = httpx.post(f"{server}/webhooks/gxm", content=gxm_body(payload={"company_id": 1}), headers=gxm_headers())
    assert response.status_code == 202, response.text
    event_id = response.json()["data"]["id"]

    worker.drain()

    assert [e.id for e in seen] == [event_id]
    assert seen[0].payload == {"company_id": 1}
    engine = create_engine(config.settings.database.url)
    with engine.connect() as conn:
        status = conn.execute(text("select status from events where id = :id"), {"id": event_id}).scalar_one()
    engine.dispose()
    assert status == "processed"
