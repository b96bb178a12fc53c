"""`hookyard serve`: the HTTP API (ingest, `/v1`, health, metrics) under uvicorn."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, add_parser, positive, settings_with

if TYPE_CHECKING:
    from schemas.settings import Settings


def add_command(commands: Subparsers) -> None:
    serve = add_parser(
        commands,
        "serve",
        summary="run the HTTP API",
        description="Serve ingest (POST /webhooks/SOURCE), the /v1 read API, /health/* and /metrics under "
        "uvicorn. SIGTERM drains in-flight requests, then exits 0.",
        examples=[
            "hookyard serve",
            "hookyard serve --host 0.0.0.0 --port 8000 --workers 4",
            "HOOKYARD_LOG_ACCESS=true hookyard serve   # one JSON access-log line per request",
        ],
    )
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8000)")
    serve.add_argument("--workers", type=positive, default=1, help="API processes")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - commands import the stack when they run (service/cli/__init__.py)

    from workers.shared.logs import configure_logging  # noqa: PLC0415

    overrides = {}
    if args.host:
        overrides["HOOKYARD_SERVER_HOST"] = args.host
    if args.port is not None:
        overrides["HOOKYARD_SERVER_PORT"] = str(args.port)
    settings = settings_with(overrides)
    configure_logging(settings.log)  # uvicorn's own lines (and its supervisor's) in our format
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal: exit 0 on it.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=args.workers,
        loop="uvloop",
        http="service.http_protocol:EnvelopeHttpToolsProtocol",
        access_log=settings.log.access,
        log_config=None,  # no handlers of uvicorn's own: its records reach workers.shared.logs'
        log_level=settings.log.level,
        timeout_graceful_shutdown=20,
        server_header=False,
    )
    return 0


def _exit_cleanly(_signum: int, _frame: object) -> None:
    sys.exit(0)
