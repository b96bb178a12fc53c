"""Extensions found by looking: every Litestar route handler defined in the modules of a package.

The `/v1` endpoints (`service.api.routes`) and the console's pages
(`service.console.pages`) are each one module per endpoint or page; adding
one is adding a module, because its package collects it with `route_handlers_in`
(the modules found as `schemas.modules` finds schemes and presets).
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar.handlers import BaseRouteHandler

from schemas.modules import public_modules


def route_handlers_in(package: str, path: Iterable[str]) -> list[BaseRouteHandler]:
    """The route handlers each module of `package` (whose `__path__` is `path`) defines, modules in name order."""
    found: list[BaseRouteHandler] = []
    for module in public_modules(path, package):
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, BaseRouteHandler) and getattr(value.fn, "__module__", None) == module.__name__
        ]
    return found
