"""`hookyard sign`: the headers a source's secret gives, for setting up a vendor or signing by hand.

A scheme that covers the body signs the exact bytes sent: give them with
`--body FILE` (`-` reads standard input); without it the empty body is
signed. Timestamped schemes sign now, or `--timestamp`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, UsageError, add_parser, source_option

if TYPE_CHECKING:
    from schemas.settings import Settings
    from schemas.signatures import SignatureScheme


def add_command(commands: Subparsers) -> None:
    sign = add_parser(
        commands,
        "sign",
        summary="print the signature headers for a source's secret",
        description="Print the headers a source's scheme gives for a body: what to give a vendor that sends "
        "the secret's digest (gxm-sha256), or what to send when signing a request by hand.",
        examples=[
            "hookyard sign",
            "hookyard sign --source stripe --body event.json",
            "curl -s https://example.org/hook.json | hookyard sign --source github --body -",
        ],
    )
    source_option(sign)
    sign.add_argument("--body", help="the body to sign (a file, or - for standard input; default: empty)")
    sign.add_argument("--timestamp", type=int, help="unix seconds for timestamped schemes (default: now)")
    sign.add_argument("--id", dest="message_id", help="the message id for standard-webhooks (default: a new one)")
    sign.set_defaults(func=run)


def scheme_of(settings: Settings, source_name: str) -> tuple[SignatureScheme, str]:
    """The source's scheme and the secret a test sender signs with (the first, newest-listed)."""
    from schemas.signatures import scheme_for  # noqa: PLC0415 - commands import the stack when they run

    source = settings.source(source_name)
    if source is None:
        names = ", ".join(s.name for s in settings.sources) or "none configured"
        raise UsageError(f"no source named {source_name!r} (sources: {names})")
    return scheme_for(source.scheme, source.secrets, source.tolerance_seconds), source.secrets[0]


def _body(where: str | None) -> bytes:
    if where is None:
        return b""
    if where == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(where).read_bytes()
    except OSError as exc:
        raise UsageError(f"--body {where}: {exc.strerror}") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    scheme, secret = scheme_of(settings, args.source)
    if scheme.needs_body and args.body is None:
        print(
            f"note: {scheme.name} signs each body; these headers are for the empty body (see --body)", file=sys.stderr
        )
    signed = scheme.sign(secret, _body(args.body), timestamp=args.timestamp, message_id=args.message_id)
    for header, value in signed.items():
        print(f"{header}: {value}")
    return 0
