"""`hookyard serve`: the HTTP API (ingest, `/v1`, health, metrics) under uvicorn."""

from __future__ import annotations

import argparse
import signal
import sys

import uvicorn

from schemas.settings import Settings
from service.cli._common import Subparsers, positive, settings_with
from service.ingest.sources import build_sources


def add_command(commands: Subparsers) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", help="bind address (default: server.host)")
    serve.add_argument("--port", type=int, help="port (default: server.port)")
    serve.add_argument("--workers", type=positive, default=1, help="API processes (default 1)")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    overrides = {}
    if args.host:
        overrides["HOOKYARD_SERVER_HOST"] = args.host
    if args.port is not None:
        overrides["HOOKYARD_SERVER_PORT"] = str(args.port)
    settings = settings_with(overrides)
    build_sources(settings)  # a source's format settings: a ConfigError here exits 2, not in uvicorn
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
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=20,
        server_header=False,
    )
    return 0


def _exit_cleanly(_signum: int, _frame: object) -> None:
    sys.exit(0)
