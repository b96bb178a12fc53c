"""`hookyard handlers`: the handlers configured modules and entry points register, and what they match."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, add_parser

if TYPE_CHECKING:
    from schemas.settings import Settings


def add_command(commands: Subparsers) -> None:
    handlers = add_parser(
        commands,
        "handlers",
        summary="list registered handlers",
        description="List the handlers that [handlers] modules and `hookyard.handlers` entry points register, "
        "with the actions each matches, its attempts and time limit, and PAUSED for a paused one (read from the "
        "database when it answers).",
        examples=["hookyard handlers", "hookyard handlers --json | jq '.[].name'"],
    )
    handlers.add_argument("--json", action="store_true", help="print the list as JSON")
    handlers.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec  # noqa: PLC0415 - commands import the stack when they run (service/cli/__init__.py)

    from workers.registry import REGISTRY, HandlerError  # noqa: PLC0415

    try:
        REGISTRY.load_configured(settings)
    except HandlerError as exc:
        print(f"hookyard: {exc}", file=sys.stderr)
        return 2
    infos = REGISTRY.describe(
        settings.handlers.default_max_attempts, settings.handlers.timeout_seconds, _paused(settings)
    )
    if args.json:
        print(msgspec.json.encode(infos).decode())
        return 0
    if not infos:
        print("no handlers registered (add modules to [handlers] modules or an entry point)")
        return 0
    width = max(len(info.name) for info in infos)
    for info in infos:
        patterns = ", ".join(info.patterns)
        paused = "  PAUSED" if info.paused else ""
        print(
            f"{info.name:<{width}}  {patterns}  (max_attempts={info.max_attempts}, timeout={info.timeout_seconds:g}s)"
            f"{paused}"
        )
    return 0


def _paused(settings: Settings) -> set[str]:
    """The paused handlers, when the database answers; listing handlers never needs it, so else none."""
    from service.cli._common import Unreachable, connected  # noqa: PLC0415
    from workers.ops.pause import paused_handlers  # noqa: PLC0415

    try:
        with connected(settings) as connections:
            return paused_handlers(connections.engine)
    except Unreachable:
        return set()
