"""`GET /v1/handlers`: the handlers this API process loaded from `[handlers] modules`.

Workers load the same modules, so this is what they run, unless a module
failed to import here (a warning at start-up names it). `paused` is read from
the database (`workers.ops.pause`), which every worker reads too.
"""

from __future__ import annotations

from litestar import get

from schemas.api import Handler, HandlerList
from service.api.docs import error_responses
from service.api.state import Api
from workers.ops.pause import paused_handlers


@get(
    "/handlers",
    sync_to_thread=True,
    summary="Registered handlers and the actions they match",
    operation_id="ListHandlers",
    responses=error_responses(),
)
def list_handlers_route(api: Api) -> HandlerList:
    settings = api.settings.handlers
    infos = api.registry.describe(
        settings.default_max_attempts, settings.timeout_seconds, paused_handlers(api.connections.engine)
    )
    return HandlerList(
        data=[
            Handler(
                name=info.name,
                patterns=info.patterns,
                max_attempts=info.max_attempts,
                timeout_seconds=info.timeout_seconds,
                paused=info.paused,
            )
            for info in infos
        ]
    )
