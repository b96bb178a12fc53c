"""`GET /v1/events/{id}`: one event with its payload and deliveries (`select=headers` adds its headers)."""

from __future__ import annotations

from litestar import get

from schemas.api import EventEnvelope
from schemas.errors import NotFound
from schemas.ids import is_event_id
from service.api.docs import error_responses
from service.api.params import SelectParam, parse_select
from service.api.reads import get_event
from service.api.state import Api


@get(
    "/events/{event_id:str}",
    sync_to_thread=True,
    summary="One event with its payload and deliveries",
    operation_id="GetEvent",
    responses=error_responses(400, 404),
)
def get_event_route(api: Api, event_id: str, select_: SelectParam = None) -> EventEnvelope:
    extras = parse_select(select_)  # payload and deliveries are always there; `headers` is on request
    event = get_event(api.engine, event_id, headers="headers" in extras) if is_event_id(event_id) else None
    if event is None:
        raise NotFound("no stored event has this id")
    return EventEnvelope(data=event)
