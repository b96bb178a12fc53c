"""`GET /v1/rejections`: the rejected-request ledger, newest first, in keyset pages.

Rows are written in batches by `service.ingest.rejections`, so a rejection
shows here about a second after it was answered.
"""

from __future__ import annotations

from schemas.api import RejectionPage
from service.api.cursors import decode_row_cursor
from service.api.filters import RejectionFilter
from service.api.params import REJECTIONS, Paging, keyset_list
from service.api.reads import list_rejections
from service.api.state import Api


@keyset_list(
    "/rejections",
    REJECTIONS,
    summary="The rejected-request ledger, newest first (keyset pages)",
    description="Every refused ingest request is counted; equal (source, code, client_ip) rejections within "
    "one second may share a row whose `count` says how many. Bodies are never kept.",
    operation_id="ListRejections",
)
def list_rejections_route(api: Api, where: RejectionFilter, paging: Paging) -> RejectionPage:
    after = paging.after(decode_row_cursor)
    page = list_rejections(api.engine, where, order=paging.order, limit=paging.limit, after=after)
    return RejectionPage(data=page.records, meta=paging.meta(page.last if page.more else None))
