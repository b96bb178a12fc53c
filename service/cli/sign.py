"""`hookyard sign`: the signature header a source's secret gives, for setting up the vendor."""

from __future__ import annotations

import argparse

from schemas.settings import Settings
from schemas.signatures import SignatureScheme, scheme_for
from service.cli._common import Subparsers, UsageError


def add_command(commands: Subparsers) -> None:
    sign = commands.add_parser("sign", help="print the signature header for a source's secret")
    sign.add_argument("--source", default="gxm")
    sign.set_defaults(func=run)


def scheme_of(settings: Settings, source_name: str) -> tuple[SignatureScheme, str]:
    """The source's scheme and the secret a test sender signs with (the first, newest-listed)."""
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
