"""The console's pages, one module each (with its template); `page_handlers()` collects them.

Adding a page is adding a module here (and its template in `templates/`):
every Litestar route handler a module defines joins the `/ui` router.
"""

from __future__ import annotations

import importlib
import pkgutil

from litestar.handlers import BaseRouteHandler


def page_handlers() -> list[BaseRouteHandler]:
    found: list[BaseRouteHandler] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, BaseRouteHandler) and getattr(value.fn, "__module__", None) == module.__name__
        ]
    return found
