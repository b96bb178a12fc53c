"""The `/v1` endpoints, one module each; `route_handlers()` collects them.

Adding an endpoint is adding a module here: every Litestar route handler a
module defines joins the `/v1` router, behind the key guard.
"""

from __future__ import annotations

from litestar.handlers import BaseRouteHandler

from service.discovery import route_handlers_in


def route_handlers() -> list[BaseRouteHandler]:
    return route_handlers_in(__name__, __path__)
