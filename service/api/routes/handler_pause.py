"""`POST /v1/handlers/{name}/pause` and `/resume` (admin, 204): hold a handler's deliveries during an incident.

The state is a row in the database (`workers.ops.pause`), so every worker sees it; the pause is
committed before the 204, and every delivery not claimed by then waits `pending`, uncharged.
Resume queues what waited. A name no registered handler has is 404.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, post

from schemas.errors import NotFound
from service.api.access import request_id
from service.api.docs import error_responses
from service.api.state import Api
from workers.ops.pause import pause, resume

log = structlog.get_logger("hookyard.api.handler_pause")


def _known(api: Api, name: str) -> None:
    if api.registry.get(name) is None:
        raise NotFound("no registered handler has this name")


@post(
    "/handlers/{name:str}/pause",
    sync_to_thread=True,
    status_code=204,
    opt={"role": "admin"},
    summary="Pause a handler (admin)",
    description="Its deliveries not yet started wait as `pending`, their attempts not counted, until resumed. "
    "Pausing a paused handler is a no-op. Unknown name: 404.",
    operation_id="PauseHandler",
    responses=error_responses(403, 404),
)
def pause_route(api: Api, request: Request[Any, Any, Any], name: str) -> None:
    _known(api, name)
    by = str(request.scope.get("state", {}).get("api_key") or "api")
    pause(api.connections, name, by)
    log.warning("handler_paused", handler=name, api_key=by, request_id=request_id(request))


@post(
    "/handlers/{name:str}/resume",
    sync_to_thread=True,
    status_code=204,
    opt={"role": "admin"},
    summary="Resume a paused handler (admin)",
    description="Its waiting deliveries are queued and run (each ordering key in `sent_at` order). "
    "Resuming a handler that is not paused is a no-op. Unknown name: 404.",
    operation_id="ResumeHandler",
    responses=error_responses(403, 404),
)
def resume_route(api: Api, request: Request[Any, Any, Any], name: str) -> None:
    _known(api, name)
    queued = resume(api.connections, name)
    log.warning(
        "handler_resumed",
        handler=name,
        api_key=request.scope.get("state", {}).get("api_key"),
        queued=queued,
        request_id=request_id(request),
    )
