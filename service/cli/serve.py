"""`hookyard serve`: the HTTP API (ingest, `/v1`, health, metrics) under uvicorn."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, UsageError, add_parser, positive, settings_with

if TYPE_CHECKING:
    from schemas.settings import Settings


def add_command(commands: Subparsers) -> None:
    serve = add_parser(
        commands,
        "serve",
        summary="run the HTTP API",
        description="Serve ingest (POST /webhooks/SOURCE), the /v1 read API, /health/* and /metrics under "
        "uvicorn. /metrics is on [server] metrics_port when set, else on the main port "
        "(free from this host, else behind an API key). "
        "With --workers N the processes share their counters (prometheus_client's multiprocess mode). "
        "SIGTERM drains in-flight requests, then exits 0.",
        examples=[
            "hookyard serve",
            "hookyard serve --host 0.0.0.0 --port 8000 --workers 4",
            "HOOKYARD_LOG_ACCESS=true hookyard serve   # one JSON access-log line per request",
            "HOOKYARD_SERVER_METRICS_PORT=9100 hookyard serve   # /metrics on its own port, without a key",
        ],
    )
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8000)")
    serve.add_argument("--workers", type=positive, default=1, help="API processes")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - commands import the stack when they run (service/cli/__init__.py)
    from uvicorn.supervisors import Multiprocess  # noqa: PLC0415

    from service.ingest.sources import build_sources, warn_wide_trusted_proxies  # noqa: PLC0415
    from service.metrics import MULTIPROC_ENV  # noqa: PLC0415
    from workers.shared.logs import configure_logging  # noqa: PLC0415

    overrides = {}
    if args.host:
        overrides["HOOKYARD_SERVER_HOST"] = args.host
    if args.port is not None:
        overrides["HOOKYARD_SERVER_PORT"] = str(args.port)
    settings = settings_with(overrides)
    configure_logging(settings.log)  # uvicorn's own lines (and its supervisor's) in our format
    build_sources(settings)  # a source's format settings: a ConfigError here exits 2, not in uvicorn
    warn_wide_trusted_proxies(settings.server.trusted_proxies)
    if settings.redis.require_fsync:
        _require_fsync(settings)
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal: exit 0 on it.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    config = uvicorn.Config(
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
        # Only `[server] trusted_proxies` (service.ingest.sources.ClientAddress) decides the client address:
        # uvicorn's own proxy headers would believe any X-Forwarded-For from 127.0.0.1 before we look.
        proxy_headers=False,
        forwarded_allow_ips=[],
    )
    server = uvicorn.Server(config)
    metrics_port = settings.server.metrics_port
    shared_metrics: str | None = None
    if args.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Every API process writes its counters here; a scrape of any of them sums them all.
        shared_metrics = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="hookyard-metrics-")
    try:
        if args.workers == 1 and metrics_port is None:
            server.run()  # exactly what uvicorn.run does for one process
        else:
            # One listening socket per port, shared by every process: the API's, and /metrics' own.
            sockets = [config.bind_socket()]
            if metrics_port is not None:
                sockets.append(_listen(settings.server.host, metrics_port))
            if args.workers > 1:
                Multiprocess(config, sockets=sockets).run()
            else:
                server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    finally:
        if shared_metrics is not None:
            shutil.rmtree(shared_metrics, ignore_errors=True)
    if args.workers == 1 and not server.started:
        return 3  # uvicorn's STARTUP_FAILURE; the reason was logged
    return 0


def _require_fsync(settings: Settings) -> None:
    """`[redis] require_fsync`: refuse to start on a Redis that answers before its fsync. A Redis that
    does not answer is no reason to refuse (events go to the spool); the API re-checks it as it runs."""
    import redis  # noqa: PLC0415

    from service.ingest.durability import read  # noqa: PLC0415
    from workers.shared.connections import redis_from_url  # noqa: PLC0415

    client = redis_from_url(settings.redis.url, socket_timeout=settings.redis.socket_timeout_seconds)
    try:
        fsync = read(client)
    except (redis.exceptions.RedisError, OSError):
        return
    finally:
        client.close()
    if not fsync.guaranteed:
        raise UsageError(f"[redis] require_fsync is true but {fsync.risk}")


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket for `[server] metrics_port`, as uvicorn binds its own (inherited by its workers)."""
    sock = socket.socket(family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _exit_cleanly(_signum: int, _frame: object) -> None:
    sys.exit(0)
