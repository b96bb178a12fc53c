"""`hookyard send`: a correctly signed test event, posted to a running server."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from service.cli._common import Subparsers, UsageError, add_parser
from service.cli.sign import scheme_of

if TYPE_CHECKING:
    from schemas.settings import Settings


def add_command(commands: Subparsers) -> None:
    send = add_parser(
        commands,
        "send",
        summary="send a correctly signed test event",
        description="Build a GuestXM envelope, sign it with the source's first secret and POST it to a running "
        "`hookyard serve`; prints the status and the answer. Exit 0 on 2xx.",
        examples=[
            "hookyard send",
            "hookyard send --action LOCATION:DELETED --payload '{\"company_id\": 7}'",
            "hookyard send --url https://hooks.example.com/webhooks/gxm",
        ],
    )
    send.add_argument("--source", default="gxm", help="a configured source name")
    send.add_argument("--action", default="LOCATION:CREATED", help="the event's action")
    send.add_argument("--payload", default="{}", help="the payload, a JSON object")
    send.add_argument("--sent-at", type=int, help="data.sent_at in Unix seconds (default: now)")
    send.add_argument("--url", help="full ingest URL (default: http://server.host:server.port/webhooks/SOURCE)")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    send.set_defaults(func=run)


def build_test_body(action: str, payload: dict[str, Any], sent_at: int | None) -> bytes:
    import msgspec  # noqa: PLC0415 - commands import the stack when they run

    data = {"sent_at": int(time.time()) if sent_at is None else sent_at, "action": action, "payload": payload}
    return msgspec.json.encode({"data": data, "meta": {}, "warnings": {}})


def run(args: argparse.Namespace, settings: Settings) -> int:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    import msgspec  # noqa: PLC0415

    from schemas.wire import ACTION_PATTERN  # noqa: PLC0415

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
