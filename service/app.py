"""The ASGI application: Litestar for the API and the console, with ingest on a direct fast path.

`create_app()` returns `HookyardApp`, which sends `/webhooks/*` requests
straight to the ingest handler and everything else (read API, console,
health, metrics, OpenAPI) to Litestar. The same ingest handler is also
mounted inside Litestar, so the Litestar app alone behaves identically, only
slower. Every `/ui` answer, whichever layer made it (a page, an error, an
asset, a 404), gets the console's security headers here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from litestar import Litestar
from litestar.handlers import asgi
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from prometheus_client import make_asgi_app

from schemas.settings import Settings, load_settings
from service.api import ApiPlugin, document_ingest, router
from service.console import SECURITY_HEADERS, ConsolePlugin, is_console_path
from service.errors import EXCEPTION_HANDLERS
from service.health import live, ready
from service.ingest.receive import IngestApp
from service.request_ids import request_id as make_request_id
from service.runtime import Runtime
from workers.shared.logs import configure_logging

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Coroutine[Any, Any, None]]

VERSION = "0.1.0"


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Echo a sane caller `X-Request-ID` or make one, on every response."""

    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = make_request_id(dict(scope["headers"]).get(b"x-request-id")).encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


def console_headers_middleware(app: ASGIApp) -> ASGIApp:
    """Add the console's Content-Security-Policy and friends to every `/ui` response."""

    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*headers, *SECURITY_HEADERS]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


class HookyardApp:
    """Top-level ASGI callable: the ingest fast path, then Litestar."""

    def __init__(self, litestar: Litestar, ingest: IngestApp, metrics: ASGIApp) -> None:
        self.litestar = request_id_middleware(litestar)  # type: ignore[arg-type]
        self.ingest = ingest
        self.metrics = request_id_middleware(metrics)
        self.console = console_headers_middleware(self.litestar)
        self.runtime: Runtime = litestar.state.runtime
        self.api = litestar
        """The Litestar application itself (OpenAPI, routes), for tools and tests."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/webhooks/"):
                await self.ingest(scope, receive, send)
                return
            if path == "/metrics":
                await self.metrics(scope, receive, send)
                return
            if is_console_path(path):
                await self.console(scope, receive, send)
                return
        await self.litestar(scope, receive, send)


def create_app(settings: Settings | None = None) -> HookyardApp:
    settings = settings or load_settings()
    configure_logging(settings.log)
    runtime = Runtime.from_settings(settings)
    ingest = IngestApp(
        sources=runtime.sources,
        queue=runtime.queue,
        limiter=runtime.limiter,
        client_address=runtime.client_address,
        max_body_bytes=settings.server.max_body_bytes,
        body_timeout=settings.server.body_timeout_seconds,
        rejections=runtime.rejections,
    )

    @asgi("/webhooks", is_mount=True, tags=["ingest"])
    async def webhooks(scope: Any, receive: Any, send: Any) -> None:
        await ingest(scope, receive, send)

    litestar = Litestar(
        route_handlers=[webhooks, live, ready, router()],
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        openapi_config=OpenAPIConfig(
            title="hookyard",
            version=VERSION,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=False,
        logging_config=None,
        plugins=[ApiPlugin(), ConsolePlugin(settings.console.enabled)],
    )
    litestar.state.runtime = runtime
    document_ingest(litestar.openapi_schema)
    return HookyardApp(litestar, ingest, make_asgi_app())
