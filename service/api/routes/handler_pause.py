"""`POST /v1/handlers/{name}/pause` and `/resume` (admin, 204): hold a handler's deliveries during an incident.

The state is a row in the database (`workers.ops.pause`), so every worker sees it; the pause is
committed before the 204, and every delivery not claimed by then waits `pending`, uncharged.
Resume queues what waited. A name no registered handler has is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from litestar import Request
from litestar.handlers import HTTPRouteHandler

from schemas.errors import NotFound
from service.api.access import admin_post, request_id
from service.api.state import Api
from workers.ops.pause import pause, resume

log = structlog.get_logger("hookyard.api.handler_pause")


def _switch(
    verb: str, act: Callable[[Api, str, str], dict[str, Any]], summary: str, description: str
) -> HTTPRouteHandler:
    """`POST /handlers/{name}/<verb>`: check the name, `act` (whose answer is logged), 204."""

    @admin_post(
        f"/handlers/{{name:str}}/{verb}",
        status_code=204,
        summary=summary,
        description=f"{description} Unknown name: 404.",
        operation_id=f"{verb.capitalize()}Handler",
        errors=(404,),
    )
    def route(api: Api, request: Request[Any, Any, Any], name: str) -> None:
        if api.registry.get(name) is None:
            raise NotFound("no registered handler has this name")
        by = str(request.scope.get("state", {}).get("api_key") or "api")
        logged = act(api, name, by)
        log.warning(f"handler_{verb}d", handler=name, api_key=by, request_id=request_id(request), **logged)

    return route


def _pause(api: Api, name: str, by: str) -> dict[str, Any]:
    pause(api.connections, name, by)
    return {}


def _resume(api: Api, name: str, _by: str) -> dict[str, Any]:
    return {"queued": resume(api.connections, name)}


pause_route = _switch(
    "pause",
    _pause,
    "Pause a handler (admin)",
    "Its deliveries not yet started wait as `pending`, their attempts not counted, until resumed. "
    "Pausing a paused handler is a no-op.",
)
resume_route = _switch(
    "resume",
    _resume,
    "Resume a paused handler (admin)",
    "Its waiting deliveries are queued and run (each ordering key in `sent_at` order). "
    "Resuming a handler that is not paused is a no-op.",
)
