"""The operator console at `/ui/`: server-rendered pages over the read API's own query code.

`ConsolePlugin` adds the `/ui` router (every module of `service.console.pages`,
the assets of `static/`, the session dependencies and the HTML error pages)
and the Jinja template engine. Pages are plain HTML that works without
JavaScript; `static/console.js` only adds the live tail and replay progress.
Every asset is served from here, and every `/ui` response carries
`Content-Security-Policy: default-src 'self'` (`service.app` adds the
headers), so no inline script or style would run.
"""

from __future__ import annotations

from litestar import Router
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from service.console.pages import page_handlers
from service.console.rendering import STATIC, environment
from service.console.web import PREFIX, SECURITY_HEADERS, console_error, provide_console, provide_viewer

__all__ = ["SECURITY_HEADERS", "ConsolePlugin", "is_console_path"]

ASSET_MAX_AGE_SECONDS = 300


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def console_router() -> Router:
    assets = create_static_files_router(
        path="/static",
        directories=[STATIC],
        cache_control=CacheControlHeader(max_age=ASSET_MAX_AGE_SECONDS),
        include_in_schema=False,
        exception_handlers={Exception: console_error},
    )
    return Router(
        PREFIX,
        route_handlers=[*page_handlers(), assets],
        dependencies={
            "console": Provide(provide_console, sync_to_thread=False),
            "viewer": Provide(provide_viewer, sync_to_thread=True),
        },
        exception_handlers={Exception: console_error},
        include_in_schema=False,
    )


class ConsolePlugin(InitPlugin):
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self.enabled:
            app_config.route_handlers.append(console_router())
            app_config.template_config = TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))
        return app_config
