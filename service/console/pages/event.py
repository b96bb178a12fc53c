"""`/ui/events/<id>`: one event — payload pretty-printed, kept headers, each delivery — and its replay buttons.

Read with `service.api.reads.get_event`, as `GET /v1/events/{id}?select=headers` is. The
replay buttons (admin sessions only) post to `/ui/events/<id>/replay` with
the session's CSRF token; they run `workers.ops.replay.replay_one`, exactly
what `POST /v1/events/{id}/replay` runs, then come back here saying what was
queued.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import structlog
from litestar import Request, get, post
from litestar.response import Redirect, Template

from schemas.errors import NotFound
from schemas.ids import is_event_id
from service.api.reads import get_event
from service.console.web import Console, Viewer, page, query_string, require_admin, require_csrf
from workers.ops.replay import replay_one

log = structlog.get_logger("hookyard.console.replay")


@get("/events/{event_id:str}", sync_to_thread=True)
def event_page(console: Console, viewer: Viewer, event_id: str, replayed: str | None = None) -> Template:
    event = get_event(console.api.engine, event_id, headers=True) if is_event_id(event_id) else None
    if event is None:
        raise NotFound("no stored event has this id")
    return page(
        "event.html",
        viewer,
        title=f"Event {event.id}",
        active="events",
        event=event,
        deliveries=[] if event.deliveries is msgspec.UNSET else event.deliveries,
        headers={} if event.headers is msgspec.UNSET else event.headers,
        flash=f"Queued again: {replayed}." if replayed else "",
    )


@post("/events/{event_id:str}/replay", status_code=303)
async def replay_event_page(
    request: Request[Any, Any, Any], console: Console, viewer: Viewer, event_id: str
) -> Redirect:
    form = await request.form()
    require_csrf(viewer, form.get("csrf"))
    require_admin(viewer)
    if not is_event_id(event_id):
        raise NotFound("no stored event has this id")
    handler = str(form.get("handler") or "").strip()
    api = console.api
    replayed, queued = await asyncio.to_thread(  # a handler that does not apply: 400 (`UnknownHandlers`)
        replay_one,
        api.connections,
        api.registry,
        api.settings.handlers.default_max_attempts,
        event_id,
        [handler] if handler else None,
    )
    if replayed is None:
        raise NotFound("no stored event has this id")
    names = ", ".join(d.handler for d in replayed.deliveries) or "nothing (no handler applies)"
    log.info(
        "event_replayed",
        event_id=event_id,
        request_id=str(request.scope.get("state", {}).get("request_id", "")),
        api_key=viewer.key_name,
        handlers=[d.handler for d in replayed.deliveries],
        deferred=not queued,
    )
    suffix = "" if queued else " (Redis is away: the workers' sweep queues it within a minute)"
    return Redirect(f"/ui/events/{event_id}?{query_string({}, replayed=names + suffix)}", status_code=303)
