"""`POST /v1/events/{id}/replay` re-running handlers through a real RQ worker drain."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.service.api.conftest import ADMIN, READ, ingest
from workers.event import Event


def _event(client, event_id):
    response = client.get(f"/v1/events/{event_id}", headers=READ)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_admin_replay_reruns_a_dead_delivery_with_a_fresh_budget(client, worker, registry):
    attempts: list[int] = []
    healthy = {"ok": False}

    def flaky(event: Event) -> None:
        attempts.append(event.attempt)
        if not healthy["ok"]:
            raise RuntimeError("downstream is down")

    registry.handler("LOCATION:*", name="flaky", max_attempts=1)(flaky)
    registry.handler("LOCATION:*", name="steady")(lambda event: None)
    event_id = ingest(client)
    worker.drain()
    event = _event(client, event_id)
    assert event["status"] == "failed"
    by_name = {d["handler"]: d for d in event["deliveries"]}
    assert by_name["flaky"]["status"] == "dead"
    assert by_name["flaky"]["attempts"] == 1
    assert "downstream is down" in by_name["flaky"]["last_error"]

    healthy["ok"] = True
    response = client.post(f"/v1/events/{event_id}/replay", json={"handlers": ["flaky"]}, headers=ADMIN)
    assert response.status_code == 202, response.text
    [replayed] = response.json()["data"]["deliveries"]
    assert replayed == {"handler": "flaky", "state": "queued", "new": False, "attempts": 1, "max_attempts": 2}
    assert _event(client, event_id)["status"] == "processing"

    worker.drain()
    assert attempts == [1, 2]  # attempt numbers continue
    event = _event(client, event_id)
    assert event["status"] == "processed"
    by_name = {d["handler"]: d for d in event["deliveries"]}
    assert by_name["flaky"]["status"] == "succeeded"
    assert by_name["steady"]["attempts"] == 1  # not named, not re-run


def test_replay_all_includes_a_handler_added_later(client, worker, registry, config):
    seen: list[str] = []
    event_id = ingest(client, action="USER:CREATED")
    worker.drain()
    assert _event(client, event_id)["status"] == "stored"

    registry.handler("USER:*", name="late-joiner")(lambda event: seen.append(event.id))
    response = client.post(f"/v1/events/{event_id}/replay", headers=ADMIN)
    assert response.status_code == 202
    [planned] = response.json()["data"]["deliveries"]
    assert planned["handler"] == "late-joiner"
    assert planned["new"] is True
    worker.drain()
    assert seen == [event_id]
    assert _event(client, event_id)["status"] == "processed"


def test_replay_errors(client, worker, registry, insert_events):
    registry.handler("LOCATION:*", name="crm")(lambda event: None)
    event_id = ingest(client)
    worker.drain()
    unknown = client.post(f"/v1/events/{event_id}/replay", json={"handlers": ["crm", "nope"]}, headers=ADMIN)
    assert unknown.status_code == 400
    assert unknown.json()["meta"]["code"] == "ERR:MSG:VALIDATION:HANDLERS"
    bad_body = client.post(f"/v1/events/{event_id}/replay", json={"handlers": "crm"}, headers=ADMIN)
    assert bad_body.status_code == 400
    assert bad_body.json()["meta"]["code"].startswith("ERR:MSG:VALIDATION:")
    missing = client.post("/v1/events/not-an-id/replay", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["meta"]["code"] == "ERR:MSG:NOT_FOUND"
    forbidden = client.post(f"/v1/events/{event_id}/replay", headers=READ)
    assert forbidden.status_code == 403


def test_running_delivery_is_not_started_twice(client, worker, registry, config):
    registry.handler("LOCATION:*", name="crm")(lambda event: None)
    event_id = ingest(client)
    worker.drain()
    engine = create_engine(config.settings.database.url)
    with engine.begin() as conn:  # as if a worker were mid-attempt
        conn.execute(
            text("update deliveries set status='retrying', lease_until=:until where event_id=:id"),
            {"until": "2999-01-01 00:00:00", "id": event_id},
        )
    engine.dispose()
    response = client.post(f"/v1/events/{event_id}/replay", headers=ADMIN)
    assert response.status_code == 202
    [delivery] = response.json()["data"]["deliveries"]
    assert delivery["state"] == "running"
    assert _event(client, event_id)["deliveries"][0]["status"] == "retrying"
