"""`hookyard purge` and `hookyard stats` as an operator runs them, on real SQLite and Redis."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy.orm import Session

from schemas.api_stats import Stats
from schemas.migrate import upgrade
from schemas.settings import DatabaseSettings, RedisSettings, Settings
from service.cli import build_parser, run_command
from service.cli._progress import Progress
from service.cli.stats import parse_since
from tests.workers.rows import event_row, store, unique_source
from workers.ops.fingerprints import FINGERPRINT_KEY
from workers.shared.connections import make_engine


def _run(argv: list[str], settings: Settings) -> int:
    return run_command(build_parser().parse_args(argv), settings)


@pytest.fixture
def settings(sqlite_url, redis_url) -> Settings:
    return Settings(
        database=DatabaseSettings(url=sqlite_url),
        redis=RedisSettings(url=redis_url, queue=f"q-{uuid.uuid4().hex[:8]}"),
    )


@pytest.fixture
def seeded(settings, redis_client) -> str:
    """Two events 100 days old and one an hour old, with fingerprints in Redis."""
    engine = make_engine(settings.database)
    upgrade(engine)
    source = unique_source()
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        for received in (now - timedelta(days=100), now - timedelta(days=100), now - timedelta(hours=1)):
            event = store(session, event_row(source, received))
            redis_client.hset(FINGERPRINT_KEY.format(source=source), event.fingerprint, event.id)
    engine.dispose()
    return source


def test_purge_reports_what_it_deleted(settings, seeded, redis_client, capsys):
    assert _run(["purge", "--older-than", "90d", "--batch-size", "1"], settings) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[-1].startswith("hookyard purge: 2/2 events (100%)")  # progress goes to stderr
    assert "deleted 2 events and 4 deliveries received before" in out
    assert "removed 2 fingerprints in 2 batches" in out
    assert redis_client.hlen(FINGERPRINT_KEY.format(source=seeded)) == 1

    assert _run(["purge", "--older-than", "90d"], settings) == 0
    assert "deleted 0 events" in capsys.readouterr().out


def test_purge_dry_run_and_json(settings, seeded, redis_client, capsys):
    assert _run(["purge", "--older-than", "90d", "--dry-run"], settings) == 0
    assert "would delete 2 events and 4 deliveries" in capsys.readouterr().out
    assert redis_client.hlen(FINGERPRINT_KEY.format(source=seeded)) == 3

    assert _run(["purge", "--older-than", "1h", "--dry-run", "--json"], settings) == 0
    report = msgspec.json.decode(capsys.readouterr().out)
    assert (report["events"], report["deliveries"], report["dry_run"]) == (3, 6, True)


@pytest.mark.parametrize("value", ["90", "ninety-days", "0d", "1y"])
def test_purge_bad_age_is_one_line_and_exit_2(settings, value, capsys):
    assert _run(["purge", "--older-than", value], settings) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("hookyard purge: --older-than:")
    assert "90d, 12h, 30m or 3600s" in captured.err


@pytest.mark.parametrize("value", ["99999999999d", "365001d", "9999999999999999w"])
def test_purge_age_past_the_calendar_is_one_line_and_exit_2(settings, value, capsys):
    assert _run(["purge", "--older-than", value], settings) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("hookyard purge: --older-than:")
    assert "too long" in captured.err
    assert "Traceback" not in captured.err


def test_purge_needs_older_than():
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["purge"])
    assert exit_info.value.code == 2


def test_purge_with_redis_down_fails_with_one_line(settings, seeded, capsys):
    down = msgspec.structs.replace(
        settings, redis=RedisSettings(url="redis://127.0.0.1:1/0", socket_timeout_seconds=0.5)
    )
    assert _run(["purge", "--older-than", "90d"], down) == 1
    err = capsys.readouterr().err
    assert err.startswith("hookyard purge:")
    assert err.count("\n") == 1


def test_stats_prints_the_numbers(settings, seeded, capsys):
    assert _run(["stats"], settings) == 0
    out = capsys.readouterr().out
    assert "events            1\n" in out  # only the event of the last 24 h
    assert "processed 1" in out
    assert "LOCATION:CREATED 1" in out
    assert f"{settings.redis.queue} 0" in out
    assert "oldest pending    none" in out

    assert _run(["stats", "--since", "200d"], settings) == 0
    assert "events            3" in capsys.readouterr().out


def test_stats_json_is_the_v1_stats_body(settings, seeded, capsys):
    assert _run(["stats", "--json", "--since", "2000-01-01T00:00:00Z"], settings) == 0
    stats = msgspec.json.decode(capsys.readouterr().out, type=Stats)
    assert stats.since == datetime(2000, 1, 1, tzinfo=UTC)
    assert stats.events.total == 3
    assert stats.deliveries.by_status["succeeded"] == 6


def test_stats_bad_since_is_one_line_and_exit_2(settings, capsys):
    assert _run(["stats", "--since", "yesterday"], settings) == 2
    err = capsys.readouterr().err
    assert err == "hookyard stats: --since: 'yesterday' is neither an age like 24h nor an ISO 8601 time\n"


def test_since_accepts_ages_and_times():
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("2026-11-01T00:00:00+01:00", now) == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.timeout(60)
def test_purge_on_a_terminal_draws_a_progress_bar(settings, seeded, redis_client):
    """On a terminal (a pty here) the progress is rich's bar, on stderr; stdout keeps only the report."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_")}
    env |= {"HOOKYARD_DATABASE_URL": settings.database.url, "HOOKYARD_REDIS_URL": settings.redis.url}
    env |= {"COLUMNS": "100", "TERM": "xterm"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "purge", "--older-than", "90d", "--batch-size", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(secondary)
        screen = b""
        while select.select([primary], [], [], 0.5)[0]:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(primary)
    assert result.returncode == 0
    assert result.stdout.startswith("deleted 2 events and 4 deliveries")
    text = screen.decode("utf-8", "replace")
    assert "hookyard purge" in text
    assert "━" in text  # the bar
    assert "2/2" in text


def test_progress_off_a_terminal_is_a_line_now_and_then_and_the_last_count_once():
    stream = io.StringIO()
    with Progress("hookyard replay", 1500, "events", stream=stream, every=0.0) as progress:
        for _ in range(3):
            progress.advance(500)
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "hookyard replay: 500/1500 events (33%)",
        "hookyard replay: 1000/1500 events (66%)",
        "hookyard replay: 1500/1500 events (100%)",
    ]


def test_a_bar_on_the_terminal_leaves_results_printed_meanwhile_on_stdout(capsys):
    """stderr a terminal, stdout a file: the per-event lines stay in the file, only the bar is drawn."""
    primary, secondary = pty.openpty()
    terminal = os.fdopen(secondary, "w")
    try:
        with Progress("hookyard replay", 2, "events", stream=terminal) as progress:
            print("01ABC: crm-sync (queued)")
            progress.advance(2)
        terminal.flush()
        screen = b""
        while select.select([primary], [], [], 0.2)[0]:
            screen += os.read(primary, 65536)
    finally:
        terminal.close()
        os.close(primary)
    assert capsys.readouterr().out == "01ABC: crm-sync (queued)\n"
    assert b"01ABC" not in screen
    assert b"2/2" in screen
