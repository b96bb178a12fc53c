"""`hookyard`: the command line of CONTRACT section 3.

Bad arguments exit 2 with argparse's one-line usage error; bad configuration
exits 2 with one line naming the key. No command prints a traceback for a
mistake the user can fix.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import uvicorn

from schemas.migrate import upgrade
from schemas.settings import ConfigError, Settings, load_settings
from schemas.wire import ACTION_PATTERN
from service.cli_ops import add_ops_commands
from service.cli_replay import add_replay_command
from service.dev import run_dev
from service.signatures import SignatureScheme, scheme_for
from workers.context import WorkerContext
from workers.db import make_engine
from workers.jobs import reconcile
from workers.logs import configure_logging
from workers.registry import REGISTRY, HandlerError
from workers.worker import run_one, supervise

Command = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """A bad argument value found after parsing: exit 2, one line."""


def _settings_with(overrides: dict[str, str]) -> Settings:
    os.environ.update(overrides)
    return load_settings()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    overrides = {}
    if args.host:
        overrides["HOOKYARD_SERVER_HOST"] = args.host
    if args.port is not None:
        overrides["HOOKYARD_SERVER_PORT"] = str(args.port)
    settings = _settings_with(overrides)
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


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log)
    if args.burst:
        return run_one(settings, burst=True)
    return supervise(args.processes, settings)


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print(f"database schema is up to date ({engine.url.render_as_string(hide_password=True)})")
    return 0


def cmd_dev(args: argparse.Namespace, _settings: Settings) -> int:
    return run_dev(port=args.port, processes=args.processes)


def scheme_of(settings: Settings, source_name: str) -> tuple[SignatureScheme, str]:
    """The source's scheme and the secret a test sender signs with (the first, newest-listed)."""
    source = settings.source(source_name)
    if source is None:
        names = ", ".join(s.name for s in settings.sources) or "none configured"
        raise UsageError(f"no source named {source_name!r} (sources: {names})")
    return scheme_for(source.scheme, source.secrets), source.secrets[0]


def cmd_sign(args: argparse.Namespace, settings: Settings) -> int:
    scheme, secret = scheme_of(settings, args.source)
    if scheme.needs_body:
        print(f"{scheme.name} signs each body with the shared secret; give the vendor the secret itself")
        return 0
    header, value = scheme.sign(secret)
    print(f"{header}: {value}")
    return 0


def build_test_body(action: str, payload: dict[str, Any], sent_at: int | None) -> bytes:
    data = {"sent_at": int(time.time()) if sent_at is None else sent_at, "action": action, "payload": payload}
    return msgspec.json.encode({"data": data, "meta": {}, "warnings": {}})


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    if not re.match(ACTION_PATTERN, args.action):
        raise UsageError(f"--action {args.action!r} is not an action like LOCATION:CREATED")
    try:
        payload = msgspec.json.decode(args.payload)
    except msgspec.DecodeError:
        raise UsageError("--payload is not valid JSON") from None
    if not isinstance(payload, dict):
        raise UsageError("--payload must be a JSON object")
    scheme, secret = scheme_of(settings, args.source)
    body = build_test_body(args.action, payload, args.sent_at)
    header, value = scheme.sign(secret, body)
    url = args.url or f"http://{settings.server.host}:{settings.server.port}/webhooks/{args.source}"
    request = urllib.request.Request(  # noqa: S310 - the user's own URL
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", header: value},
    )
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"hookyard: cannot reach {url}: {reason}", file=sys.stderr)
        return 1
    print(f"{status} {body.decode('utf-8', 'replace')}")
    return 0 if 200 <= status < 300 else 1


def cmd_handlers(args: argparse.Namespace, settings: Settings) -> int:
    try:
        REGISTRY.load(settings.handlers.modules)
    except HandlerError as exc:
        print(f"hookyard: {exc}", file=sys.stderr)
        return 2
    infos = REGISTRY.describe(settings.handlers.default_max_attempts, settings.handlers.timeout_seconds)
    if args.json:
        print(msgspec.json.encode(infos).decode())
        return 0
    if not infos:
        print("no handlers registered (add modules to [handlers] modules or an entry point)")
        return 0
    width = max(len(info.name) for info in infos)
    for info in infos:
        patterns = ", ".join(info.patterns)
        print(
            f"{info.name:<{width}}  {patterns}  (max_attempts={info.max_attempts}, timeout={info.timeout_seconds:g}s)"
        )
    return 0


def cmd_reconcile(_args: argparse.Namespace, settings: Settings) -> int:
    context = WorkerContext.build(settings)
    try:
        count = reconcile(context)
    finally:
        context.close()
    print(f"re-queued {count} stranded deliveries")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookyard", description="Webhook receiver and event processor.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", help="bind address (default: server.host)")
    serve.add_argument("--port", type=int, help="port (default: server.port)")
    serve.add_argument("--workers", type=_positive, default=1, help="API processes (default 1)")
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run RQ workers that store events and run handlers")
    worker.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    worker.add_argument("--processes", type=_positive, default=1, help="worker processes (default 1)")
    worker.set_defaults(func=cmd_worker)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(func=cmd_migrate)

    dev = commands.add_parser("dev", help="everything on embedded defaults in one process group")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--processes", type=_positive, default=1, help="worker processes")
    dev.set_defaults(func=cmd_dev, no_settings=True)

    send = commands.add_parser("send", help="send a correctly signed test event")
    send.add_argument("--source", default="gxm")
    send.add_argument("--action", default="LOCATION:CREATED")
    send.add_argument("--payload", default="{}", help="JSON object")
    send.add_argument("--sent-at", type=int, help="Unix seconds (default: now)")
    send.add_argument("--url", help="full ingest URL (default: from [server])")
    send.add_argument("--timeout", type=float, default=10.0)
    send.set_defaults(func=cmd_send)

    sign = commands.add_parser("sign", help="print the signature header for a source's secret")
    sign.add_argument("--source", default="gxm")
    sign.set_defaults(func=cmd_sign)

    handlers = commands.add_parser("handlers", help="list registered handlers")
    handlers.add_argument("--json", action="store_true")
    handlers.set_defaults(func=cmd_handlers)

    add_replay_command(commands)

    reconcile = commands.add_parser("reconcile", help="re-queue deliveries that nothing will run")
    reconcile.set_defaults(func=cmd_reconcile)

    add_ops_commands(commands)

    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings() if getattr(args, "no_settings", False) else load_settings()
        code: int = args.func(args, settings)
    except ConfigError as exc:
        print(f"hookyard: config error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"hookyard {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
