"""`GET /v1/replays/{id}`: one bulk replay and how far it got."""

from __future__ import annotations

from litestar import get

from schemas.api import BulkReplayEnvelope
from schemas.errors import NotFound
from service.api.bulk_replays import get_replay
from service.api.docs import error_responses
from service.api.state import Api


@get(
    "/replays/{replay_id:str}",
    sync_to_thread=True,
    summary="One bulk replay: status, counts, progress",
    description="`done` once every chosen delivery has been queued again (not when the handlers finished); "
    "`queued` counts those queued so far.",
    operation_id="GetReplay",
    responses=error_responses(404),
)
def get_replay_route(api: Api, replay_id: str) -> BulkReplayEnvelope:
    replay = get_replay(api.engine, replay_id)
    if replay is None:
        raise NotFound("no replay has this id")
    return BulkReplayEnvelope(data=replay)
