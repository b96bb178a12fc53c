"""`GET /v1/deliveries`: deliveries across events, most recently updated first, in keyset pages.

Served by the `(updated_at, id)`, `(status, updated_at, id)` and `(handler,
status, updated_at, id)` indexes; `source` and `action` are the event's and
mean what they mean on `/v1/events`.
"""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import Parameter

from schemas.api import DeliveryPage, DeliveryStatusName, PageMeta
from service.api.cursors import decode_row_cursor, encode_cursor
from service.api.docs import error_responses
from service.api.filters import DeliveryFilter
from service.api.params import DEFAULT_LIMIT, ActionParam, CursorParam, LimitParam, OrderParam, SourceParam
from service.api.reads import list_deliveries
from service.api.state import Api


@get(
    "/deliveries",
    sync_to_thread=True,
    summary="List deliveries across events, most recently updated first (keyset pages)",
    operation_id="ListDeliveries",
    responses=error_responses(400),
)
def list_deliveries_route(
    api: Api,
    handler: Annotated[str | None, Parameter(description="Only this handler's deliveries")] = None,
    status: Annotated[DeliveryStatusName | None, Parameter(description="Only deliveries in this status")] = None,
    source: SourceParam = None,
    action: ActionParam = None,
    since: Annotated[str | None, Parameter(description="ISO 8601; updated at or after it")] = None,
    until: Annotated[str | None, Parameter(description="ISO 8601; updated before it")] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    order: OrderParam = "desc",
) -> DeliveryPage:
    where = DeliveryFilter.parse(handler=handler, status=status, source=source, action=action, since=since, until=until)
    query = where.fingerprint(order)
    after = None if cursor is None else decode_row_cursor(cursor, order, query)
    page = list_deliveries(api.engine, where, order=order, limit=limit, after=after)
    next_cursor = encode_cursor(*page.last, order, query) if page.more and page.last else None
    return DeliveryPage(data=page.records, meta=PageMeta(next_cursor=next_cursor, limit=limit))
