"""`hookyard migrate` says what it applied; `--check`, `current` and `history` say where the schema stands."""

from __future__ import annotations

from pathlib import Path

from tests.service.cli.test_cli import run


def test_migrate_names_what_it_applies_and_check_gates_a_deploy(tmp_path: Path):
    env = {"HOOKYARD_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}

    check = run(["migrate", "--check"], tmp_path, None, **env)
    assert check.returncode == 1, check.stderr
    pending = [line.removeprefix("pending ") for line in check.stdout.splitlines() if line.startswith("pending ")]
    assert pending[0] == "0001: events and deliveries"  # oldest first
    assert f"{len(pending)} migration(s) pending" in check.stdout

    first = run(["migrate"], tmp_path, None, **env)
    assert first.returncode == 0, first.stderr
    applied = [line.removeprefix("applied ") for line in first.stdout.splitlines() if line.startswith("applied ")]
    assert applied == pending
    assert first.stdout.splitlines()[-1].startswith("database schema is up to date")

    again = run(["migrate"], tmp_path, None, **env)
    assert "applied" not in again.stdout

    assert run(["migrate", "--check"], tmp_path, None, **env).returncode == 0
    head = pending[-1].split(":")[0]
    assert run(["migrate", "current"], tmp_path, None, **env).stdout.strip() == f"{head} (head)"
    history = run(["migrate", "history"], tmp_path, None, **env)
    assert f"-> {head} (head) (current)" in history.stdout
    assert "<base> -> 0001" in history.stdout


def test_migrate_against_an_unreachable_database_is_one_line(tmp_path: Path):
    env = {"HOOKYARD_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"}
    result = run(["migrate", "--check"], tmp_path, None, **env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("hookyard migrate:")
