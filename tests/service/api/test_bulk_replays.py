"""`POST /v1/replays` and `GET /v1/replays/{id}`: the dry run counts exactly what the replay re-runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select

from schemas.tables import ReplayItemRow, ReplayRow
from tests.service.api.conftest import ADMIN, READ, ingest
from workers.event import Event, PermanentError
from workers.ops.replay import advance_replay

DEAD_CRM = {"delivery_status": "dead", "handlers": ["crm"]}


def _replay(client, filter_, dry_run=False, headers=ADMIN):
    return client.post("/v1/replays", json={"filter": filter_, "dry_run": dry_run}, headers=headers)


def _runner(config, replay_id):
    """The runner token the API gave the replay's job (what the worker job is called with)."""
    engine = create_engine(config.settings.database.url)
    with engine.connect() as conn:
        runner = conn.execute(select(ReplayRow.runner).where(ReplayRow.id == replay_id)).scalar_one()
    engine.dispose()
    return runner


@pytest.fixture
def broken_crm(registry):
    """`crm` fails for good until healed; `audit` always succeeds."""
    state = {"healthy": False, "runs": []}

    def crm(event: Event) -> None:
        state["runs"].append((event.id, event.attempt))
        if not state["healthy"]:
            raise PermanentError("crm is down")

    registry.handler("LOCATION:*", "USER:*", name="crm")(crm)
    registry.handler("LOCATION:*", name="audit")(lambda event: None)
    return state


def test_dry_run_counts_exactly_what_the_replay_then_replays(client, worker, registry, config, broken_crm):
    located = [ingest(client, "LOCATION:CREATED") for _ in range(3)]
    user = ingest(client, "USER:CREATED")
    worker.drain()
    before = client.get("/v1/deliveries", params={"status": "dead"}, headers=READ).json()["data"]
    assert len(before) == 4

    dry = _replay(client, {**DEAD_CRM, "action": "LOCATION:*"}, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"data": {"events": 3, "deliveries": 3}, "meta": {}, "warnings": {}}
    assert client.get("/v1/deliveries", params={"status": "dead"}, headers=READ).json()["data"] == before

    created = _replay(client, {**DEAD_CRM, "action": "LOCATION:*"})
    assert created.status_code == 201, created.text
    replay = created.json()["data"]
    assert created.headers["location"] == f"/v1/replays/{replay['id']}"
    assert (replay["status"], replay["events"], replay["deliveries"], replay["finished_at"]) == ("queued", 3, 3, None)
    assert replay["created_at"].endswith("Z")

    broken_crm["healthy"] = True
    worker.drain()  # the `run_replay` job the API queued, then the run jobs it queued
    progress = client.get(created.headers["location"], headers=READ).json()["data"]
    assert (progress["status"], progress["queued"]) == ("done", 3)
    assert progress["finished_at"] is not None
    statuses = {e["id"]: e["status"] for e in client.get("/v1/events", headers=READ).json()["data"]}
    assert [statuses[event_id] for event_id in located] == ["processed"] * 3
    assert statuses[user] == "failed"  # outside the filter
    assert sorted(attempt for event_id, attempt in broken_crm["runs"] if event_id in located) == [1, 1, 1, 2, 2, 2]

    engine = create_engine(config.settings.database.url)
    with engine.connect() as conn:  # the frozen set is dropped once done
        assert conn.execute(select(func.count()).select_from(ReplayItemRow)).scalar() == 0
    engine.dispose()


def test_event_status_and_time_filters_choose_events_then_their_deliveries(client, worker, config, broken_crm):
    ingest(client, "LOCATION:CREATED")
    worker.drain()
    failed = _replay(client, {"status": "failed"}, dry_run=True).json()["data"]
    assert failed == {"events": 1, "deliveries": 2}  # all deliveries of failed events: crm and audit
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _replay(client, {"since": future}, dry_run=True).json()["data"] == {"events": 0, "deliveries": 0}
    nothing = _replay(client, {"since": future})
    assert nothing.status_code == 201
    assert nothing.json()["data"]["status"] == "done"  # nothing chosen: done at once


def test_a_second_runner_cannot_run_a_replay_it_does_not_own(client, worker, registry, config, broken_crm):
    ingest(client, "LOCATION:CREATED")
    worker.drain()
    replay = _replay(client, DEAD_CRM).json()["data"]
    connections = worker.context.connections
    assert advance_replay(connections, registry, 5, replay["id"], "not-the-runner") == "superseded"
    assert client.get(f"/v1/replays/{replay['id']}", headers=READ).json()["data"]["queued"] == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"filter": {}}, "ERR:MSG:VALIDATION:FILTER"),
        ({"filter": {"source": None, "handlers": None}}, "ERR:MSG:VALIDATION:FILTER"),
        ({"filter": {"handlers": []}}, "ERR:MSG:VALIDATION:HANDLERS"),
        ({"filter": {"delivery_status": "failed"}}, "ERR:MSG:VALIDATION:DELIVERY_STATUS"),
        ({"filter": {"status": "dead"}}, "ERR:MSG:VALIDATION:STATUS"),
        ({"filter": {"action": "location"}}, "ERR:MSG:VALIDATION:ACTION"),
        ({"filter": {"since": "soon"}}, "ERR:MSG:VALIDATION:SINCE"),
    ],
)
def test_bad_filters_are_400(client, body, code):
    response = client.post("/v1/replays", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["meta"]["code"] == code


def test_a_misspelt_filter_key_is_refused_not_ignored(client):
    response = client.post("/v1/replays", json={"filter": {"delivery_satus": "dead"}}, headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["meta"]["code"].startswith("ERR:MSG:VALIDATION:")


def test_replays_need_an_admin_key_and_unknown_ids_are_404(client):
    assert _replay(client, DEAD_CRM, headers=READ).status_code == 403
    assert _replay(client, DEAD_CRM, headers={}).status_code == 401
    for replay_id in ("nope", "01a20856-3016-738b-a446-277ac917831e"):
        missing = client.get(f"/v1/replays/{replay_id}", headers=READ)
        assert missing.status_code == 404
        assert missing.json()["meta"]["code"] == "ERR:MSG:NOT_FOUND"


def test_a_nul_in_a_replay_filter_is_a_400(client):
    for filter_, code in (({"handlers": ["\u0000"]}, "HANDLERS"), ({"source": "a\u0000"}, "SOURCE")):
        response = client.post("/v1/replays", json={"filter": filter_, "dry_run": True}, headers=ADMIN)
        assert response.status_code == 400, response.text
        assert response.json()["meta"]["code"] == f"ERR:MSG:VALIDATION:{code}"


def test_a_replay_runs_in_batches_each_moving_its_position_once(client, worker, registry, config, broken_crm):
    for _ in range(5):
        ingest(client, "LOCATION:CREATED")
    worker.drain()
    created = _replay(client, DEAD_CRM).json()["data"]
    runner = _runner(config, created["id"])
    connections = worker.context.connections
    seen = []
    real = connections.queue_deliveries

    def spy(ids, delay=0.0):
        seen.append(list(ids))
        real(ids, delay)

    connections.queue_deliveries = spy  # type: ignore[method-assign]
    try:
        assert advance_replay(connections, registry, 5, created["id"], runner, batch=2) == "done"
    finally:
        connections.queue_deliveries = real  # type: ignore[method-assign]
    assert [len(batch) for batch in seen] == [2, 2, 1]
    assert len({i for batch in seen for i in batch}) == 5
    assert client.get(f"/v1/replays/{created['id']}", headers=READ).json()["data"]["queued"] == 5


def test_the_sweep_restarts_a_replay_whose_job_was_lost(client, worker, registry, config, broken_crm):
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from sqlalchemy import update  # noqa: PLC0415

    from workers.jobs import reconcile  # noqa: PLC0415

    ingest(client, "LOCATION:CREATED")
    worker.drain()
    created = _replay(client, DEAD_CRM).json()["data"]
    worker.context.queue.empty()  # as if Redis lost the replay's job
    old_runner = _runner(config, created["id"])
    engine = create_engine(config.settings.database.url)
    with engine.begin() as conn:
        conn.execute(update(ReplayRow).values(updated_at=datetime.now(UTC) - timedelta(minutes=10)))
    engine.dispose()
    reconcile(worker.context)
    assert _runner(config, created["id"]) != old_runner
    broken_crm["healthy"] = True
    worker.drain()
    replay = client.get(f"/v1/replays/{created['id']}", headers=READ).json()["data"]
    assert (replay["status"], replay["queued"]) == ("done", 1)
    assert advance_replay(worker.context.connections, registry, 5, created["id"], old_runner) == "superseded"
