"""`hookyard send`: a correctly signed test event, posted to a running server.

For a `gxm` source the body is the GuestXM envelope; for a `json` source it
is `--payload` with the source's locators filled in (the action's parts, a
fresh event id, the send time), and header locators become headers. `--body
FILE` sends a body of your own instead (header locators are still set).
Either way the body is signed the way the source's scheme signs.
"""

from __future__ import annotations

import argparse
import re
import secrets as random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli._common import Subparsers, UsageError, add_parser, source_option
from service.cli.sign import scheme_of

if TYPE_CHECKING:
    from schemas.locators import Locator
    from schemas.settings import Settings, SourceSettings


def add_command(commands: Subparsers) -> None:
    send = add_parser(
        commands,
        "send",
        summary="send a correctly signed test event",
        description="Build a body the source reads as --action (the GuestXM envelope for a gxm source, the "
        "payload with the source's locators filled in for a json one), sign it the way the source's scheme "
        "signs, and POST it to a running `hookyard serve`; prints the status and the answer. Exit 0 on 2xx.",
        examples=[
            "hookyard send",
            "hookyard send --action LOCATION:DELETED --payload '{\"company_id\": 7}'",
            "hookyard send --source stripe --action CHARGE:SUCCEEDED --body charge.json",
            "hookyard send --url https://hooks.example.com/webhooks/gxm",
        ],
    )
    source_option(send)
    send.add_argument("--action", default="LOCATION:CREATED", help="the event's action")
    send.add_argument("--payload", default="{}", help="the payload, a JSON object")
    send.add_argument("--body", type=Path, help="send this file as the body (signed), instead of one built here")
    send.add_argument("--sent-at", type=int, help="Unix seconds (default: now)")
    send.add_argument("--url", help="full ingest URL (default: http://server.host:server.port/webhooks/SOURCE)")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    send.set_defaults(func=run)


def build_test_body(action: str, payload: dict[str, Any], sent_at: int | None) -> bytes:
    import msgspec  # noqa: PLC0415 - commands import the stack when they run (service/cli/__init__.py)

    data = {"sent_at": int(time.time()) if sent_at is None else sent_at, "action": action, "payload": payload}
    return msgspec.json.encode({"data": data, "meta": {}, "warnings": {}})


def sample_request(
    source: SourceSettings,
    action: str,
    payload: dict[str, Any],
    sent_at: int | None = None,
    body: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and headers (signature excluded) that this source reads as `action`, with a fresh event id.

    The action's parts go to the non-literal action locators in order, the
    last one taking what is left (joined with `.`, lower case: a vendor's own
    spelling, which normalises back to `action`).
    """
    import msgspec  # noqa: PLC0415

    from schemas.locators import parse_locator  # noqa: PLC0415

    sent_at = int(time.time()) if sent_at is None else sent_at
    values: list[tuple[Locator, Any]] = []
    targets = [where for where in map(parse_locator, source.action) if where.kind != "literal"]
    parts = action.lower().split(":")
    for n, where in enumerate(targets):
        chosen = parts[n:] if n == len(targets) - 1 else parts[n : n + 1]
        if chosen:
            values.append((where, ".".join(chosen)))
    if source.event_id:
        values.append((parse_locator(source.event_id), f"hookyard-test-{random.token_hex(8)}"))
    if source.sent_at:
        values.append((parse_locator(source.sent_at), sent_at))
    headers = {"Content-Type": "application/json"}
    document: dict[str, Any] = dict(payload)
    for where, value in values:
        if where.kind == "header":
            headers[where.text.removeprefix("header:")] = str(value)
        elif where.kind == "json":
            _put(document, where, value)
    if body is None:
        body = build_test_body(action, payload, sent_at) if source.format == "gxm" else msgspec.json.encode(document)
    return body, headers


def _put(document: dict[str, Any], where: Locator, value: Any) -> None:
    target: Any = document
    for token in where.tokens[:-1]:
        target = target.setdefault(token, {}) if isinstance(target, dict) else None
    if not isinstance(target, dict) or not where.tokens:
        raise UsageError(f"--payload leaves no room for {where.text}")
    target[where.tokens[-1]] = value


def run(args: argparse.Namespace, settings: Settings) -> int:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    import msgspec  # noqa: PLC0415

    from schemas.actions import is_pattern  # noqa: PLC0415
    from schemas.wire import ACTION_PATTERN  # noqa: PLC0415

    scheme, secret = scheme_of(settings, args.source)
    source = settings.source(args.source)
    assert source is not None  # scheme_of said it exists
    pattern = ACTION_PATTERN if source.format == "gxm" else None
    valid = re.match(pattern, args.action) if pattern else is_pattern(args.action) and "*" not in args.action
    if not valid:
        raise UsageError(f"--action {args.action!r} is not an action like LOCATION:CREATED")
    try:
        payload = msgspec.json.decode(args.payload)
    except msgspec.DecodeError:
        raise UsageError("--payload is not valid JSON") from None
    if not isinstance(payload, dict):
        raise UsageError("--payload must be a JSON object")
    own: bytes | None = None
    if args.body is not None:
        try:
            own = args.body.read_bytes()
        except OSError as exc:
            raise UsageError(f"--body {args.body}: {exc.strerror}") from None
    body, headers = sample_request(source, args.action, payload, args.sent_at, own)
    headers.update(scheme.sign(secret, body))
    url = args.url or f"http://{settings.server.host}:{settings.server.port}/webhooks/{args.source}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - the user's URL
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"hookyard: cannot reach {url}: {reason}", file=sys.stderr)
        return 1
    print(f"{status} {answer.decode('utf-8', 'replace')}")
    return 0 if 200 <= status < 300 else 1
