"""What the commands share: the `UsageError` that exits 2, settings with overrides, argument types."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis
from sqlalchemy.exc import SQLAlchemyError

from schemas.settings import Settings, load_settings
from workers.shared.connections import Connections

Command = Callable[[argparse.Namespace, Settings], int]
Subparsers = Any
"""argparse's private `_SubParsersAction`, which every command module adds its parser to."""


class UsageError(Exception):
    """A bad argument value found after parsing: exit 2, one line."""


class Unreachable(Exception):
    """Redis or the database failed the command: exit 1, one line."""


@contextmanager
def connected(settings: Settings, *also: type[Exception]) -> Iterator[Connections]:
    """This command's connections, closed after; their failures (and `also`) become `Unreachable`."""
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
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n" if as_json else text(result))
    return 0


def settings_with(overrides: dict[str, str]) -> Settings:
    """Settings as the config file and environment give them, with command-line values on top."""
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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
