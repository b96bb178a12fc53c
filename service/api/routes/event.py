"""`GET /v1/events/{id}`: one event with its payload and deliveries."""

from __future__ import annotations

from litestar import get

from schemas.api import EventEnvelope
from schemas.errors import NotFound
from schemas.ids import is_event_id
from service.api.docs import error_responses
from service.api.reads import get_event
from service.api.state import Api


@get(
    "/events/{event_id:str}",
    sync_to_thread=True,
    summary="One event with its payload and deliveries",
    operation_id="GetEvent",
    responses=error_responses(404),
)
def get_event_route(api: Api, event_id: str) -> EventEnvelope:
    event = get_event(api.engine, event_id) if is_event_id(event_id) else None
    if event is None:
        raise NotFound("no stored event has this id")
    return EventEnvelope(data=event)
