"""The `/v1` endpoints, one module each; `route_handlers()` collects them.

Adding an endpoint is adding a module here: every Litestar route handler a
module defines joins the `/v1` router, behind the key guard.
"""

from __future__ import annotations

import importlib
import pkgutil

from litestar.handlers import BaseRouteHandler


def route_handlers() -> list[BaseRouteHandler]:
    found: list[BaseRouteHandler] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, BaseRouteHandler) and getattr(value.fn, "__module__", None) == module.__name__
        ]
    return found
