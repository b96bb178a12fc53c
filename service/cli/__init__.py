"""`hookyard`: the command line of CONTRACT section 3, one module per command.

Every public module of this package is a command: it defines
`add_command(commands)`, which adds its parser and sets `func` to a
`run(args, settings) -> exit code`. Adding a command is adding a module.

Bad arguments exit 2 with argparse's one-line usage error, or with a
`UsageError` found after parsing; bad configuration exits 2 with one line
naming the key. No command prints a traceback for a mistake the user can fix.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from schemas.settings import ConfigError, Settings, load_settings
from service.cli._common import Unreachable, UsageError


def command_modules() -> list[str]:
    """The command modules of this package (a leading `_` marks a helper, not a command)."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookyard", description="Webhook receiver and event processor.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(f"{__name__}.{name}").add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings() if getattr(args, "no_settings", False) else load_settings()
    except ConfigError as exc:
        print(f"hookyard: config error: {exc}", file=sys.stderr)
        return 2
    return run_command(args, settings)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run a parsed command: a mistake the user can fix is one line on stderr and exit 2."""
    try:
        code: int = args.func(args, settings)
    except ConfigError as exc:
        print(f"hookyard: config error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"hookyard {args.command}: {exc}", file=sys.stderr)
        return 2
    except Unreachable as exc:
        print(f"hookyard {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
