"""`/ui/dead`: dead deliveries grouped by handler, listed newest first, and replayed in bulk after a count.

The list is `GET /v1/deliveries?status=dead` (`service.api.reads.list_deliveries`).
"Replay…" leads to `/ui/dead/plan`, which shows the dry-run count of exactly
the filter the replay will use (`service.api.bulk_replays`); confirming posts
to `/ui/replays`, which creates the replay as `POST /v1/replays` does and
goes to its progress page. Both need an admin session.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from litestar import Request, get, post
from litestar.response import Redirect, Template

from schemas.api import ReplayFilter
from schemas.errors import Invalid
from schemas.tables import DeliveryStatus
from service.api.bulk_replays import ReplaySelection, count_replay, create_replay, start_replay
from service.api.cursors import decode_row_cursor, encode_cursor
from service.api.filters import DeliveryFilter
from service.api.params import DEFAULT_LIMIT
from service.api.reads import dead_by_handler, list_deliveries
from service.console.web import Console, Viewer, page, pager_links, query_string, require_admin, require_csrf

log = structlog.get_logger("hookyard.console.dead")

LIST_FILTERS = ("handler", "source", "action")
PLAN_FILTERS = (*LIST_FILTERS, "since", "until")


def _given(values: Any, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(values.get(name) or "").strip() for name in names}


def _selection(given: dict[str, str]) -> ReplaySelection:
    """Dead deliveries, narrowed by the form: the filter `POST /v1/replays` would get."""
    return ReplaySelection.parse(
        ReplayFilter(
            delivery_status=DeliveryStatus.DEAD,
            handlers=[given["handler"]] if given.get("handler") else None,
            source=given.get("source") or None,
            action=given.get("action") or None,
            since=given.get("since") or None,
            until=given.get("until") or None,
        )
    )


@get("/dead", sync_to_thread=True)
def dead_page(request: Request[Any, Any, Any], console: Console, viewer: Viewer) -> Template:
    engine = console.api.engine
    given = _given(request.query_params, LIST_FILTERS)
    cursor = request.query_params.get("cursor")
    context: dict[str, Any] = {
        "filters": given,
        "groups": dead_by_handler(engine),
        "deliveries": [],
        "plan_query": None,
        **pager_links(given, None, None),
    }
    try:
        where = DeliveryFilter.parse(
            status=DeliveryStatus.DEAD,
            handler=given["handler"] or None,
            source=given["source"] or None,
            action=given["action"] or None,
        )
        query = where.fingerprint("desc")
        after = decode_row_cursor(cursor, "desc", query) if cursor else None
    except Invalid as exc:
        return page("dead.html", viewer, title="Dead letters", active="dead", status=400, problem=exc.detail, **context)
    found = list_deliveries(engine, where, order="desc", limit=DEFAULT_LIMIT, after=after)
    context["deliveries"] = found.records
    position = encode_cursor(*found.last, "desc", query) if found.more and found.last else None
    context.update(pager_links(given, cursor, position), plan_query=query_string(given))
    return page("dead.html", viewer, title="Dead letters", active="dead", **context)


@get("/dead/plan", sync_to_thread=True)
def plan_page(request: Request[Any, Any, Any], console: Console, viewer: Viewer) -> Template:
    require_admin(viewer)
    given = _given(request.query_params, PLAN_FILTERS)
    try:
        selection, problem = _selection(given), None
    except Invalid as exc:
        selection, problem = None, exc.detail
    counts = None if selection is None else count_replay(console.api.engine, selection)
    status = 200 if problem is None else 400
    return page(
        "plan.html",
        viewer,
        title="Replay dead letters",
        active="dead",
        status=status,
        problem=problem,
        filters=given,
        counts=counts,
    )


@post("/replays", status_code=303)
async def create_replay_page(request: Request[Any, Any, Any], console: Console, viewer: Viewer) -> Redirect:
    form = await request.form()
    require_csrf(viewer, form.get("csrf"))
    require_admin(viewer)
    given = _given(form, PLAN_FILTERS)
    selection = _selection(given)  # a bad value is a 400 page
    rid = str(request.scope.get("state", {}).get("request_id", ""))
    api = console.api
    replay, runner = await asyncio.to_thread(
        create_replay, api.engine, selection, created_by=viewer.key_name, request_id=rid
    )
    queued = await asyncio.to_thread(start_replay, api.connections, replay, runner, rid)
    log.info(
        "replay_created",
        replay_id=replay.id,
        request_id=rid,
        api_key=viewer.key_name,
        events=replay.events,
        deliveries=replay.deliveries,
        deferred=not queued,
    )
    return Redirect(f"/ui/replays/{replay.id}", status_code=303)
