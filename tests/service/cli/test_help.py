"""What `hookyard --help` tells a user, and that it answers without loading the stack.

Speed itself is measured, not asserted (COMMON.md: no timed assertions); what
makes it fast is asserted: building the parser imports none of the heavy
packages, which the commands import only when they run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from schemas.tables import DeliveryStatus, EventStatus
from service.cli import build_parser, command_modules
from service.cli.replay import DELIVERY_STATUSES, EVENT_STATUSES

HEAVY = ("sqlalchemy", "litestar", "redis", "rq", "uvicorn", "alembic", "structlog", "prometheus_client", "msgspec")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


COMMANDS = _subparsers(build_parser())


def test_help_imports_none_of_the_stack():
    probe = (
        "import sys; from service.cli import build_parser; build_parser().format_help(); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_top_level_help_names_the_config_and_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "HOOKYARD_CONFIG" in result.stdout
    assert "HOOKYARD_<SECTION>_<KEY>" in result.stdout
    for name in command_modules():
        assert re.search(rf"^    {name}\b", result.stdout, re.MULTILINE), name


def test_version_is_the_installed_one():
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert result.stdout == f"hookyard {version('hookyard')}\n"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_examples_and_every_option_help_and_its_default(name: str):
    parser = COMMANDS[name]
    text = parser.format_help()
    assert parser.epilog is not None
    assert parser.epilog.startswith("examples:\n"), name
    assert f"hookyard {name}" in parser.epilog or name == "dev", parser.epilog
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest}: no help"
        if action.default not in (None, False) and not isinstance(action.default, list):
            assert f"(default: {action.default})" in " ".join(text.split()), f"{name} {action.dest}"


def test_replay_statuses_are_the_tables_own():
    assert set(EVENT_STATUSES) == set(EventStatus.ALL)
    assert set(DELIVERY_STATUSES) == set(DeliveryStatus.ALL)
