"""What the commands share: `add_parser` (help with defaults and examples), `UsageError`, argument types.

Kept light on purpose: `hookyard --help` imports every command module, so
command modules import the stack (SQLAlchemy, Redis, Litestar, ...) inside
`run`, when the command actually runs, and so does this module's `connected`.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import msgspec

    from schemas.settings import Settings
    from workers.shared.connections import Connections

Command = Callable[[argparse.Namespace, "Settings"], int]
Subparsers = Any
"""argparse's private `_SubParsersAction`, which every command module adds its parser to."""
T = TypeVar("T")


class UsageError(Exception):
    """A bad argument value found after parsing: exit 2, one line."""


class Unreachable(Exception):
    """Redis or the database failed the command: exit 1, one line."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default shown after its help (not for flags and options that default to nothing);
    prose wrapped to the terminal, but blocks with indented lines (examples, tables) kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if any(line.startswith("  ") for line in lines):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                prose = " ".join(block.split())
                blocks.append(textwrap.fill(prose, width, initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or isinstance(action.default, list):
            return action.help
        return super()._get_help_string(action)


def add_parser(
    commands: Subparsers, name: str, *, summary: str, examples: Sequence[str], description: str | None = None
) -> argparse.ArgumentParser:
    """A command's parser: `summary` in `hookyard --help`, `description` and `examples` in its own help."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description or summary[:1].upper() + summary[1:] + ".",
        epilog=epilog,
        formatter_class=HelpFormatter,
    )
    return parser


@contextmanager
def connected(settings: Settings, *also: type[Exception]) -> Iterator[Connections]:
    """This command's connections, closed after; their failures (and `also`) become `Unreachable`."""
    import redis  # noqa: PLC0415 - see the module docstring
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from workers.shared.connections import Connections  # noqa: PLC0415

    failures: tuple[type[Exception], ...] = (SQLAlchemyError, redis.RedisError, OSError, *also)
    connections = Connections(settings)
    try:
        yield connections
    except failures as exc:
        raise Unreachable(one_line(exc)) from exc
    finally:
        connections.close()


def emit(result: msgspec.Struct, as_json: bool, text: Callable[[Any], str]) -> int:
    """Print a command's result as JSON (`--json`) or as text for people; exit 0."""
    import msgspec  # noqa: PLC0415

    sys.stdout.write(msgspec.json.encode(result).decode() + "\n" if as_json else text(result))
    return 0


def settings_with(overrides: dict[str, str]) -> Settings:
    """Settings as the config file and environment give them, with command-line values on top."""
    from schemas.settings import load_settings  # noqa: PLC0415

    os.environ.update(overrides)
    return load_settings()


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def source_option(parser: argparse.ArgumentParser) -> None:
    """`--source`: the configured source whose scheme and secret a command signs with (`send`, `sign`)."""
    parser.add_argument("--source", default="gxm", help="a configured source name")


def checked(parse: Callable[[str], T], value: str, option: str) -> T:
    """`parse(value)` for a value checked when the command runs: its `ValueError` is a usage error naming `option`."""
    try:
        return parse(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
