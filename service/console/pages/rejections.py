"""`/ui/rejections`: the rejected-request ledger with the filters of `GET /v1/rejections`, in keyset pages."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from schemas.errors import Invalid
from service.api.cursors import decode_row_cursor, encode_cursor
from service.api.filters import RejectionFilter
from service.api.params import DEFAULT_LIMIT
from service.api.reads import list_rejections
from service.console.web import Console, Viewer, page, pager_links

FILTERS = ("source", "code", "since", "until")


@get("/rejections", sync_to_thread=True)
def rejections_page(request: Request[Any, Any, Any], console: Console, viewer: Viewer) -> Template:
    given = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    cursor = request.query_params.get("cursor")
    context: dict[str, Any] = {"filters": given, "rejections": [], **pager_links(given, None, None)}
    try:
        where = RejectionFilter.parse(**{name: value or None for name, value in given.items()})
        query = where.fingerprint("desc")
        after = decode_row_cursor(cursor, "desc", query) if cursor else None
    except Invalid as exc:
        return page(
            "rejections.html",
            viewer,
            title="Rejections",
            active="rejections",
            status=400,
            problem=exc.detail,
            **context,
        )
    found = list_rejections(console.api.engine, where, order="desc", limit=DEFAULT_LIMIT, after=after)
    context["rejections"] = found.records
    position = encode_cursor(*found.last, "desc", query) if found.more and found.last else None
    context.update(pager_links(given, cursor, position))
    return page("rejections.html", viewer, title="Rejections", active="rejections", **context)
