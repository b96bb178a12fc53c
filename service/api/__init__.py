"""The `/v1` read API for dashboards.

`router()` is the `/v1` router: every route of `service.api.routes` behind
the key guard (`service.api.access`), with `ApiState` injected as `api`.
`ApiPlugin` wires start-up (handler modules, the metrics refresher), shutdown
and the OpenAPI security schemes; `document_ingest` adds the ingest route to
the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.di import Provide

from service.api.access import require_key
from service.api.docs import SECURITY, document_ingest
from service.api.plugin import ApiPlugin
from service.api.routes import route_handlers
from service.api.state import ApiState, api_state

__all__ = ["ApiPlugin", "document_ingest", "router"]


def provide_api(request: Request[Any, Any, Any]) -> ApiState:
    return api_state(request.app)


def router() -> Router:
    return Router(
        "/v1",
        route_handlers=route_handlers(),
        guards=[require_key],
        dependencies={"api": Provide(provide_api, sync_to_thread=False)},
        security=SECURITY,
        tags=["read API"],
    )
