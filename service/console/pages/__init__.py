"""The console's pages, one module each (with its template); `page_handlers()` collects them.

Adding a page is adding a module here (and its template in `templates/`):
every Litestar route handler a module defines joins the `/ui` router.
"""

from __future__ import annotations

from litestar.handlers import BaseRouteHandler

from service.discovery import route_handlers_in


def page_handlers() -> list[BaseRouteHandler]:
    return route_handlers_in(__name__, __path__)
