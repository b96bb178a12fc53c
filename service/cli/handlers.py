"""`hookyard handlers`: the handlers configured modules and entry points register, and what they match."""

from __future__ import annotations

import argparse
import sys

import msgspec

from schemas.settings import Settings
from service.cli._common import Subparsers
from workers.registry import REGISTRY, HandlerError


def add_command(commands: Subparsers) -> None:
    handlers = commands.add_parser("handlers", help="list registered handlers")
    handlers.add_argument("--json", action="store_true")
    handlers.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        REGISTRY.load_configured(settings.handlers)
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
