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

import structlog
from litestar import Litestar
from litestar.handlers import asgi
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from prometheus_client import make_asgi_app

from schemas.errors import HookyardError, NotFound, Unauthorized
from schemas.settings import Settings, load_settings
from service.api import ApiPlugin, document_ingest, router
from service.api.auth import KeyRing, presented_key
from service.console import SECURITY_HEADERS, ConsolePlugin, is_console_path
from service.errors import EXCEPTION_HANDLERS, render
from service.health import live, ready
from service.ingest.receive import IngestApp
from service.ingest.sources import ClientAddress
from service.metrics import http_metrics, scrape_registry
from service.request_ids import request_id as make_request_id
from service.runtime import Runtime
from service.version import version
from workers.shared import tracing
from workers.shared.logs import configure_logging

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Coroutine[Any, Any, None]]


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Echo a sane caller `X-Request-ID` or make one, on every response."""

    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = make_request_id(dict(scope["headers"]).get(b"x-request-id")).encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        structlog.contextvars.bind_contextvars(request_id=request_id.decode())  # this request's task only

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


def metrics_endpoint(settings: Settings, client_address: ClientAddress) -> ASGIApp:
    """`/metrics`: on `[server] metrics_port` as it is; on the main port to this host, or with a valid API key.

    The ingest port faces vendors, so a scrape from elsewhere must name a key
    (or use the metrics port); a scrape from this host (the operator, a sidecar,
    CONTRACT section 6's unauthenticated `/metrics`) needs none. Behind a proxy
    the client is the one `trusted_proxies` vouches for, never the proxy itself.
    """
    exposition = make_asgi_app(scrape_registry())
    if settings.server.metrics_port is not None:
        return exposition
    keys = KeyRing.from_settings(settings)

    async def behind_a_key(scope: Scope, receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        peer = scope.get("client")
        address = client_address.resolve(peer[0] if peer else None, headers.get(b"x-forwarded-for"))
        if address is not None and address.is_loopback:
            await exposition(scope, receive, send)
            return
        given = presented_key(
            headers.get(b"authorization", b"").decode("latin-1"), headers.get(b"x-api-key", b"").decode("latin-1")
        )
        if given is None or keys.identify(given) is None:
            await send_error(
                send,
                Unauthorized(
                    "/metrics needs an API key (Authorization: Bearer <key> or X-API-Key), "
                    "or set [server] metrics_port",
                    headers=(("www-authenticate", "Bearer"),),
                ),
            )
            return
        await exposition(scope, receive, send)

    return behind_a_key


class HookyardApp:
    """Top-level ASGI callable: the ingest fast path, `/metrics`, then Litestar.

    With `[server] metrics_port`, `hookyard serve` listens there too: a request that
    arrived on that port gets `/metrics` and nothing else, and the main port has no `/metrics`.
    """

    def __init__(self, litestar: Litestar, ingest: IngestApp, metrics: ASGIApp, metrics_port: int | None) -> None:
        self.litestar = request_id_middleware(http_metrics(litestar))  # type: ignore[arg-type]
        self.ingest = ingest
        self.metrics = request_id_middleware(metrics)
        self.only_metrics = request_id_middleware(_only_metrics)
        self.metrics_port = metrics_port
        self.console = console_headers_middleware(self.litestar)
        self.runtime: Runtime = litestar.state.runtime
        self.api = litestar
        """The Litestar application itself (OpenAPI, routes), for tools and tests."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if self.metrics_port is not None and (scope.get("server") or ("", 0))[1] == self.metrics_port:
                app = self.metrics if path == "/metrics" else self.only_metrics
                await app(scope, receive, send)
                return
            if path.startswith("/webhooks/"):
                await self.ingest.handle(scope, receive, send)
                return
            if path == "/metrics" and self.metrics_port is None:
                await self.metrics(scope, receive, send)
                return
            if is_console_path(path):
                await self.console(scope, receive, send)
                return
        await self.litestar(scope, receive, send)


async def _only_metrics(_scope: Scope, _receive: Any, send: Any) -> None:
    await send_error(send, NotFound("only /metrics is served on the metrics port"))


async def send_error(send: Any, error: HookyardError) -> None:
    """Answer a raw ASGI request with `error`'s envelope (the ingest fast path does the same)."""
    status, headers, body = render(error)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _tracing_plugins(tracer: object | None) -> list[Any]:
    """Litestar's own OpenTelemetry plugin for `/v1` and health, when tracing is on (the otel extra)."""
    if tracer is None:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin  # noqa: PLC0415

    return [OpenTelemetryPlugin(OpenTelemetryConfig(exclude=["/metrics"]))]


def create_app(settings: Settings | None = None) -> HookyardApp:
    settings = settings or load_settings()
    configure_logging(settings.log)
    runtime = Runtime.from_settings(settings)
    tracer = tracing.tracer()
    ingest = IngestApp(
        sources=runtime.sources,
        queue=runtime.queue,
        limiter=runtime.limiter,
        client_address=runtime.client_address,
        max_body_bytes=settings.server.max_body_bytes,
        body_timeout=settings.server.body_timeout_seconds,
        tracer=tracer,
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
            version=version(),
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=False,
        logging_config=None,
        plugins=[ApiPlugin(), ConsolePlugin(settings.console.enabled), *_tracing_plugins(tracer)],
    )
    litestar.state.runtime = runtime
    document_ingest(litestar.openapi_schema)
    return HookyardApp(
        litestar, ingest, metrics_endpoint(settings, runtime.client_address), settings.server.metrics_port
    )
