"""`POST /v1/events/{id}/replay` (admin): re-run an event's handlers.

The rules live in `workers.ops.replay`, shared with `hookyard replay`. The reset
is committed before the job is queued; if Redis cannot take the job the
answer is still 202 (with `warnings.queue = "deferred"`), because the
workers' sweep queues pending deliveries that have no job.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request

from schemas.api import ReplayEnvelope, ReplayRequest, ReplayResult
from schemas.errors import NotFound
from schemas.ids import is_event_id
from service.api.access import admin_post, request_id
from service.api.state import Api
from workers.ops.replay import replay_one

log = structlog.get_logger("hookyard.api.replay")


@admin_post(
    "/events/{event_id:str}/replay",
    status_code=202,
    summary="Re-run an event's handlers (admin)",
    description="Each replayed delivery gets a fresh budget of its handler's `max_attempts`; attempt numbers "
    "continue. Without `handlers`, every delivery of the event is replayed, plus any registered handler that "
    "matches the action but never ran on it. An unknown name is `400 ERR:MSG:VALIDATION:HANDLERS`.",
    operation_id="ReplayEvent",
    errors=(400, 404),
)
def replay_route(
    api: Api, request: Request[Any, Any, Any], event_id: str, data: ReplayRequest | None = None
) -> ReplayEnvelope:
    handlers = None if data is None else data.handlers
    if not is_event_id(event_id):
        raise NotFound("no stored event has this id")
    replayed, queued = replay_one(
        api.connections, api.registry, api.settings.handlers.default_max_attempts, event_id, handlers
    )
    if replayed is None:
        raise NotFound("no stored event has this id")
    warnings: dict[str, Any] = {}
    rid = request_id(request)
    if not queued:
        warnings["queue"] = "deferred"
        log.warning("replay_enqueue_failed", event_id=event_id, request_id=rid)
    log.info(
        "event_replayed",
        event_id=event_id,
        request_id=rid,
        api_key=request.scope.get("state", {}).get("api_key"),
        handlers=[d.handler for d in replayed.deliveries],
    )
    result = ReplayResult(event_id=replayed.event_id, deliveries=replayed.deliveries)
    return ReplayEnvelope(data=result, warnings=warnings)
