"""`hookyard` as a user runs it: mistakes exit 2 with one line and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], tmp_path: Path, toml: str | None = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_")}
    if toml is not None:
        path = tmp_path / "hookyard.toml"
        path.write_text(toml)
        environ["HOOKYARD_CONFIG"] = str(path)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, result.stderr


@pytest.mark.parametrize(
    ("toml", "env", "needle"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot: unknown key"),
        ("", {"HOOKYARD_SERVER_PROT": "1"}, "server.prot: unknown key"),
        ("[server]\nport = 'x'\n", {}, "server.port"),
        ('[[sources]]\nname = "gxm"\nsecrets = ["env:MISSING_SECRET_VAR"]\n', {}, "MISSING_SECRET_VAR"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path: Path, toml: str, env: dict[str, str], needle: str) -> None:
    result = run(["sign"], tmp_path, toml, **env)
    assert_one_line_exit_2(result, "config error", needle)
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_naming_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = run(["migrate"], tmp_path, None, HOOKYARD_CONFIG=str(tmp_path / "nope.toml"))
    assert_one_line_exit_2(result, "HOOKYARD_CONFIG", "nope.toml")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["serve", "--port", "eighty"],
        ["serve", "--workers", "0"],
        ["worker", "--processes", "-1"],
        ["send", "--sent-at", "yesterday"],
        ["sign", "--bogus"],
    ],
    ids=lambda a: " ".join(a) or "no-command",
)
def test_bad_arguments_exit_2_without_traceback(tmp_path: Path, args: list[str]) -> None:
    result = run(args, tmp_path)
    assert_one_line_exit_2(result, "error")
    assert result.stderr.startswith("usage: hookyard")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["send", "--action", "lowercase"], "--action"),
        (["send", "--payload", "{nope"], "--payload is not valid JSON"),
        (["send", "--payload", "[1]"], "--payload must be a JSON object"),
        (["send", "--source", "other"], "no source named 'other'"),
    ],
)
def test_bad_argument_values_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = run(args, tmp_path, '[[sources]]\nname = "gxm"\nsecrets = ["s"]\n')
    assert_one_line_exit_2(result, needle)
    assert len(result.stderr.strip().splitlines()) == 1
