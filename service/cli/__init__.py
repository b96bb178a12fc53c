"""`hookyard`: the command line of CONTRACT section 3, one module per command.

Every public module of this package is a command: it defines
`add_command(commands)`, which adds its parser (with `_common.add_parser`:
help, defaults and examples) and sets `func` to a `run(args, settings) -> exit
code`. Adding a command is adding a module. Command modules import only what
their parser needs at the top and the rest inside `run`, so `--help` answers
without loading the stack.

Bad arguments exit 2 with argparse's one-line usage error, or with a
`UsageError` found after parsing; bad configuration exits 2 with one line
naming the key. No command prints a traceback for a mistake the user can fix.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import pkgutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from service.cli._common import HelpFormatter, Unreachable, UsageError

if TYPE_CHECKING:
    from schemas.settings import Settings

ENVIRONMENT = """\
configuration:
  HOOKYARD_CONFIG             the TOML file to read (default: ./hookyard.toml)
  HOOKYARD_<SECTION>_<KEY>    overrides one key, e.g. HOOKYARD_REDIS_URL, HOOKYARD_LOG_FORMAT=console
  OTEL_EXPORTER_OTLP_ENDPOINT turns on tracing (with the otel extra); the other OTEL_* variables apply

Run `hookyard COMMAND --help` for a command's options and examples."""


class _Version(argparse.Action):
    """`--version`, reading the installed version only when asked (importlib.metadata is not free)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, help="print the version and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from service.version import version  # noqa: PLC0415 - only when asked

        print(f"hookyard {version()}")
        parser.exit()


def command_modules() -> list[str]:
    """The command names, one per module of this package (a leading `_` marks a helper, not a command;
    a trailing `_` lets a command be a Python keyword: module `try_` is `hookyard try`)."""
    return sorted(
        info.name.removesuffix("_") for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookyard",
        description="Webhook receiver and event processor.",
        epilog=ENVIRONMENT,
        formatter_class=lambda prog: HelpFormatter(prog, max_help_position=32),
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in command_modules():
        module = f"{name}_" if keyword.iskeyword(name) else name
        importlib.import_module(f"{__name__}.{module}").add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from schemas.settings import ConfigError, Settings, load_settings  # noqa: PLC0415 - after --help

    try:
        settings = Settings() if getattr(args, "no_settings", False) else load_settings()
    except ConfigError as exc:
        print(f"hookyard: config error: {exc}", file=sys.stderr)
        return 2
    return run_command(args, settings)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run a parsed command: a mistake the user can fix is one line on stderr and exit 2."""
    from schemas.settings import ConfigError  # noqa: PLC0415

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
