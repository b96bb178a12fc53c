"""The `/v1` read API for dashboards.

`route_handlers()` is the `/v1` router: every route behind the key guard
(`service.api.access`), with `ApiState` injected as `api`. `ApiPlugin`
wires start-up (handler modules, the metrics refresher), shutdown and the
OpenAPI security schemes; `document_ingest` adds the ingest route to the
OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.di import Provide

from service.api.access import require_key
from service.api.docs import SECURITY, document_ingest
from service.api.events import get_event_route, list_events_route
from service.api.handlers import list_handlers_route
from service.api.plugin import ApiPlugin
from service.api.replay import replay_route
from service.api.state import ApiState, api_state
from service.api.stats import stats_route
from service.api.stream import stream_route

__all__ = ["ApiPlugin", "document_ingest", "route_handlers"]


def provide_api(request: Request[Any, Any, Any]) -> ApiState:
    return api_state(request.app)


def route_handlers() -> list[Any]:
    return [
        Router(
            "/v1",
            route_handlers=[
                list_events_route,
                get_event_route,
                replay_route,
                stats_route,
                list_handlers_route,
                stream_route,
            ],
            guards=[require_key],
            dependencies={"api": Provide(provide_api, sync_to_thread=False)},
            security=SECURITY,
            tags=["read API"],
        )
    ]
