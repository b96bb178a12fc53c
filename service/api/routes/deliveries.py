"""`GET /v1/deliveries`: deliveries across events, most recently updated first, in keyset pages.

Served by the `(updated_at, id)`, `(status, updated_at, id)` and `(handler,
status, updated_at, id)` indexes; `source` and `action` are the event's and
mean what they mean on `/v1/events`.
"""

from __future__ import annotations

from schemas.api import DeliveryPage
from service.api.cursors import decode_row_cursor
from service.api.filters import DeliveryFilter
from service.api.params import DELIVERIES, Paging, keyset_list
from service.api.reads import list_deliveries
from service.api.state import Api


@keyset_list(
    "/deliveries",
    DELIVERIES,
    summary="List deliveries across events, most recently updated first (keyset pages)",
    operation_id="ListDeliveries",
)
def list_deliveries_route(api: Api, where: DeliveryFilter, paging: Paging) -> DeliveryPage:
    after = paging.after(decode_row_cursor)
    page = list_deliveries(api.engine, where, order=paging.order, limit=paging.limit, after=after)
    return DeliveryPage(data=page.records, meta=paging.meta(page.last if page.more else None))
