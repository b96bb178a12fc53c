"""`GET /v1/rejections`: the rejected-request ledger, newest first, in keyset pages.

Rows are written in batches by `service.ingest.rejections`, so a rejection
shows here about a second after it was answered.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import Parameter

from schemas.api import PageMeta, RejectionPage
from service.api.cursors import decode_row_cursor, encode_cursor
from service.api.docs import error_responses
from service.api.filters import RejectionFilter
from service.api.params import DEFAULT_LIMIT, CursorParam, LimitParam, OrderParam
from service.api.reads import list_rejections
from service.api.state import Api


@get(
    "/rejections",
    sync_to_thread=True,
    summary="The rejected-request ledger, newest first (keyset pages)",
    description="Every refused ingest request is counted; equal (source, code, client_ip) rejections within "
    "one second may share a row whose `count` says how many. Bodies are never kept.",
    operation_id="ListRejections",
    responses=error_responses(400),
)
def list_rejections_route(
    api: Api,
    source: Annotated[str | None, Parameter(description="Only requests to this source name")] = None,
    code: Annotated[str | None, Parameter(description="Only this `meta.code` (`ERR:MSG:SIGNATURE`)")] = None,
    since: Annotated[str | None, Parameter(description="ISO 8601; received at or after it")] = None,
    until: Annotated[str | None, Parameter(description="ISO 8601; received before it")] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    order: OrderParam = "desc",
) -> RejectionPage:
    where = RejectionFilter.parse(source=source, code=code, since=since, until=until)
    query = where.fingerprint(order)
    after = None if cursor is None else decode_row_cursor(cursor, order, query)
    page = list_rejections(api.engine, where, order=order, limit=limit, after=after)
    next_cursor = encode_cursor(*page.last, order, query) if page.more and page.last else None
    return RejectionPage(data=page.records, meta=PageMeta(next_cursor=next_cursor, limit=limit))
