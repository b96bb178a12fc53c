"""`hookyard sign`: the signature header a source's secret gives, for setting up the vendor."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, UsageError, add_parser

if TYPE_CHECKING:
    from schemas.settings import Settings
    from schemas.signatures import SignatureScheme


def add_command(commands: Subparsers) -> None:
    sign = add_parser(
        commands,
        "sign",
        summary="print the signature header for a source's secret",
        description="Print the header a vendor must send for a source (for schemes that sign the secret "
        "itself, like gxm-sha256); for schemes that sign each body, says to hand over the secret.",
        examples=["hookyard sign", "hookyard sign --source stripe"],
    )
    sign.add_argument("--source", default="gxm", help="a configured source name")
    sign.set_defaults(func=run)


def scheme_of(settings: Settings, source_name: str) -> tuple[SignatureScheme, str]:
    """The source's scheme and the secret a test sender signs with (the first, newest-listed)."""
    from schemas.signatures import scheme_for  # noqa: PLC0415 - commands import the stack when they run

    source = settings.source(source_name)
    if source is None:
        names = ", ".join(s.name for s in settings.sources) or "none configured"
        raise UsageError(f"no source named {source_name!r} (sources: {names})")
    return scheme_for(source.scheme, source.secrets), source.secrets[0]


def run(args: argparse.Namespace, settings: Settings) -> int:
    scheme, secret = scheme_of(settings, args.source)
    if scheme.needs_body:
        print(f"{scheme.name} signs each body with the shared secret; give the vendor the secret itself")
        return 0
    header, value = scheme.sign(secret)
    print(f"{header}: {value}")
    return 0
