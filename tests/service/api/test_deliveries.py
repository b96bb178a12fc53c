"""`GET /v1/deliveries`: deliveries across events, newest `updated_at` first, keyset pages, the filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, update

from schemas.tables import DeliveryRow
from tests.service.api.conftest import READ, ingest
from workers.event import PermanentError

NOW = datetime.now(UTC).replace(microsecond=0)


def _touch(config, updated: dict[str, datetime]) -> None:
    """Give each event's deliveries an `updated_at` of our choosing."""
    engine = create_engine(config.settings.database.url)
    with engine.begin() as conn:
        for event_id, moment in updated.items():
            conn.execute(update(DeliveryRow).where(DeliveryRow.event_id == event_id).values(updated_at=moment))
    engine.dispose()


def _get(client, **params):
    response = client.get("/v1/deliveries", params=params, headers=READ)
    assert response.status_code == 200, response.text
    return response.json()


def test_deliveries_across_events_newest_update_first_with_their_events_source_and_action(
    client, worker, registry, config
):
    def crm(event):
        if event.action == "USER:DELETED":
            raise PermanentError("crm refused the user")

    registry.handler("LOCATION:*", "USER:*", name="crm")(crm)
    registry.handler("LOCATION:*", name="audit")(lambda event: None)
    first = ingest(client, "LOCATION:CREATED")
    second = ingest(client, "USER:DELETED")
    worker.drain()
    _touch(config, {first: NOW - timedelta(minutes=5), second: NOW - timedelta(minutes=1)})

    body = _get(client)
    assert body["meta"] == {"next_cursor": None, "limit": 50}
    listed = [(d["event_id"], d["handler"], d["status"]) for d in body["data"]]
    assert listed[0] == (second, "crm", "dead")
    assert sorted(listed[1:]) == sorted([(first, "audit", "succeeded"), (first, "crm", "succeeded")])
    dead = body["data"][0]
    assert set(dead) == {
        "event_id",
        "source",
        "action",
        "handler",
        "status",
        "attempts",
        "last_error",
        "updated_at",
    }
    assert (dead["source"], dead["action"], dead["attempts"]) == ("gxm", "USER:DELETED", 1)
    assert "crm refused the user" in dead["last_error"]
    assert dead["updated_at"].endswith("Z")

    assert [d["event_id"] for d in _get(client, status="dead")["data"]] == [second]
    assert {d["handler"] for d in _get(client, handler="audit")["data"]} == {"audit"}
    assert [d["handler"] for d in _get(client, handler="crm", status="succeeded")["data"]] == ["crm"]
    assert {d["event_id"] for d in _get(client, action="LOCATION:*")["data"]} == {first}
    assert {d["event_id"] for d in _get(client, action="*:DELETED")["data"]} == {second}
    assert _get(client, source="nope")["data"] == []
    since = (NOW - timedelta(minutes=2)).isoformat()
    assert [d["event_id"] for d in _get(client, since=since)["data"]] == [second]
    assert {d["event_id"] for d in _get(client, until=since)["data"]} == {first}
    assert [d["event_id"] for d in _get(client, order="asc")["data"]][-1] == second


def test_keyset_pages_neither_skip_nor_repeat(client, insert_events, config):
    ids = insert_events(7, deliveries={"crm": "dead", "audit": "succeeded"})
    _touch(config, {event_id: NOW - timedelta(seconds=100 - i) for i, event_id in enumerate(ids)})
    seen, cursor = [], None
    while True:
        body = _get(client, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [(d["event_id"], d["handler"]) for d in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 14
    assert len(set(seen)) == 14
    assert [event_id for event_id, _ in seen[::2]] == ids[::-1]  # two deliveries an event, same updated_at

    dead = _get(client, status="dead", limit=2)
    other = client.get(
        "/v1/deliveries", params={"status": "succeeded", "cursor": dead["meta"]["next_cursor"]}, headers=READ
    )
    assert other.status_code == 400
    assert other.json()["meta"]["code"] == "ERR:MSG:VALIDATION:CURSOR"
    events_cursor = client.get("/v1/events", params={"limit": 1}, headers=READ).json()["meta"]["next_cursor"]
    reused = client.get("/v1/deliveries", params={"cursor": events_cursor}, headers=READ)
    assert reused.status_code == 400
    assert reused.json()["meta"]["code"] == "ERR:MSG:VALIDATION:CURSOR"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "failed"}, "ERR:MSG:VALIDATION:STATUS"),  # an event status, not a delivery status
        ({"action": "location:created"}, "ERR:MSG:VALIDATION:ACTION"),
        ({"since": "yesterday"}, "ERR:MSG:VALIDATION:SINCE"),
        ({"limit": "0"}, "ERR:MSG:VALIDATION:LIMIT"),
        ({"cursor": "garbage!"}, "ERR:MSG:VALIDATION:CURSOR"),
    ],
)
def test_bad_filters_are_400_naming_the_filter(client, params, code):
    response = client.get("/v1/deliveries", params=params, headers=READ)
    assert response.status_code == 400, response.text
    assert response.json()["meta"]["code"] == code


def test_deliveries_need_a_key(client):
    assert client.get("/v1/deliveries").status_code == 401


def test_dead_counts_per_handler_are_bounded(client, insert_events, config):
    from service.api.reads import DeadCount, dead_by_handler  # noqa: PLC0415

    insert_events(5, deliveries={"crm": "dead", "audit": "succeeded"})
    insert_events(2, deliveries={"billing": "dead"})
    engine = create_engine(config.settings.database.url)
    try:
        assert dead_by_handler(engine) == [DeadCount("crm", 5, False), DeadCount("billing", 2, False)]
        assert dead_by_handler(engine, cap=3) == [DeadCount("crm", 3, True), DeadCount("billing", 2, False)]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/events?source=%00", "ERR:MSG:VALIDATION:SOURCE"),
        ("/v1/deliveries?source=a%00", "ERR:MSG:VALIDATION:SOURCE"),
        ("/v1/deliveries?handler=%00", "ERR:MSG:VALIDATION:HANDLER"),
        ("/v1/rejections?code=%00", "ERR:MSG:VALIDATION:CODE"),
    ],
)
def test_a_nul_in_a_name_filter_is_a_400_not_a_database_error(client, path, code):
    response = client.get(path, headers=READ)
    assert response.status_code == 400, response.text
    assert response.json()["meta"]["code"] == code
