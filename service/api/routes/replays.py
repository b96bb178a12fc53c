"""`POST /v1/replays` (admin): a bulk replay by filter, or its dry-run count.

The dry run (200) and the replay (201 + `Location`) choose deliveries with
the same query (`service.api.bulk_replays`). The record is committed before
the job is queued; if Redis cannot take the job the answer is still 201
(with `warnings.queue = "deferred"`) and the workers' sweep starts it later.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.openapi import ResponseSpec

from schemas.api import BulkReplayEnvelope, ReplayCountsEnvelope, ReplayCreate
from service.api.access import admin_post, request_id
from service.api.bulk_replays import ReplaySelection, count_replay, create_replay, start_replay
from service.api.state import Api

log = structlog.get_logger("hookyard.api.replays")


@admin_post(
    "/replays",
    summary="Replay many deliveries by filter, or count them (admin)",
    description="`filter` means what the same filters mean on `/v1/events` (`status` is the event's); "
    "`delivery_status` and `handlers` choose which of those events' deliveries. `dry_run`: 200 with the "
    "counts, nothing changes. Otherwise 201 and `Location: /v1/replays/<id>`; workers re-queue the "
    "deliveries in batches. An empty filter is `400 ERR:MSG:VALIDATION:FILTER`.",
    operation_id="CreateReplay",
    responses={200: ResponseSpec(ReplayCountsEnvelope, description="Dry run: what the replay would re-run")},
    errors=(400,),
)
def create_replay_route(api: Api, request: Request[Any, Any, Any], data: ReplayCreate) -> Response[Any]:
    selection = ReplaySelection.parse(data.filter)
    if data.dry_run:
        return Response(ReplayCountsEnvelope(data=count_replay(api.engine, selection)), status_code=200)
    rid = request_id(request)
    key_name = str(request.scope.get("state", {}).get("api_key", ""))
    replay, runner = create_replay(api.engine, selection, created_by=key_name, request_id=rid)
    warnings: dict[str, Any] = {}
    if not start_replay(api.connections, replay, runner, rid):
        warnings["queue"] = "deferred"
    log.info(
        "replay_created",
        replay_id=replay.id,
        request_id=rid,
        api_key=key_name,
        events=replay.events,
        deliveries=replay.deliveries,
    )
    return Response(
        BulkReplayEnvelope(data=replay, warnings=warnings),
        status_code=201,
        headers={"Location": f"/v1/replays/{replay.id}"},
    )
