"""`/ui/handlers`: each registered handler — patterns, limits — with its deliveries of the last 24 hours.

The list is `GET /v1/handlers`' (the API process's registry, the same modules
the workers load); the counts are deliveries updated in the window, by status
(`workers.ops.stats.handler_outcomes`). A handler that has deliveries but is
not registered here (removed, or its module failed to load in this process)
is listed too, so its dead letters are not hidden. An admin session pauses and
resumes a handler here (`POST /ui/handlers/<name>/pause|resume`, CSRF-checked,
the same `workers.ops.pause` as the API).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from litestar import Request, get, post
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from schemas.errors import NotFound
from service.console.web import Console, Viewer, page, query_string, require_admin, require_csrf
from workers.ops.pause import pause, paused_handlers, resume
from workers.ops.stats import handler_outcomes

log = structlog.get_logger("hookyard.console.handlers")

WINDOW = timedelta(hours=24)


@get("/handlers", sync_to_thread=True)
def handlers_page(console: Console, viewer: Viewer, done: str | None = None) -> Template:
    api = console.api
    settings = api.settings.handlers
    infos = api.registry.describe(settings.default_max_attempts, settings.timeout_seconds, paused_handlers(api.engine))
    with Session(api.engine) as session:
        outcomes = handler_outcomes(session, datetime.now(UTC) - WINDOW)
    registered = {info.name for info in infos}
    return page(
        "handlers.html",
        viewer,
        title="Handlers",
        active="handlers",
        handlers=infos,
        outcomes=outcomes,
        unregistered=sorted(set(outcomes) - registered),
        flash=done or "",
    )


@post("/handlers/{name:str}/{action:str}", status_code=303)
async def pause_handler_page(
    request: Request[Any, Any, Any], console: Console, viewer: Viewer, name: str, action: str
) -> Redirect:
    """`action` is `pause` or `resume`; anything else, or a name no handler has, is 404."""
    form = await request.form()
    require_csrf(viewer, form.get("csrf"))
    require_admin(viewer)
    api = console.api
    if action not in ("pause", "resume") or api.registry.get(name) is None:
        raise NotFound("no registered handler has this name")
    if action == "pause":
        await asyncio.to_thread(pause, api.connections, name, f"console:{viewer.key_name}")
        done = f"Paused {name}: its deliveries wait until you resume it."
    else:
        queued = await asyncio.to_thread(resume, api.connections, name)
        done = f"Resumed {name}: {queued} waiting deliveries queued."
    log.warning(f"handler_{action}d", handler=name, api_key=viewer.key_name)
    return Redirect(f"/ui/handlers?{query_string({}, done=done)}", status_code=303)
