"""`hookyard try HANDLER --event ID` as a real subprocess: runs the handler, prints the outcome, records nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import Config, ConfigFactory, Worker, enqueue_events, gxm_body, rows
from tests.plugins.recording import recorded


def hookyard_try(config: Config, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "try", *args],
        env=config.env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_try_runs_one_handler_on_a_stored_event_and_records_nothing(
    make_config: ConfigFactory, worker: Worker, tmp_path: Path
) -> None:
    config = make_config(handler_modules=["tests.plugins.recording", "tests.plugins.failing"])
    [event_id] = enqueue_events(config, gxm_body("INVOICE:FAILING"))
    worker.drain()  # stored; the test's own registry has no handlers, so no deliveries
    assert rows(config, "select status from events") == [("stored",)]
    record = tmp_path / "record.txt"

    ran = hookyard_try(config, "record-all", "--event", event_id, HOOKYARD_TEST_RECORD=str(record))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"record-all on {event_id} (INVOICE:FAILING): succeeded in ")
    assert [(name, seen, attempt) for name, seen, attempt, _ in recorded(record)] == [("record-all", event_id, 1)]

    failed = hookyard_try(config, "always-fails", "--event", event_id, "--attempt", "3")
    assert failed.returncode == 1
    lines = failed.stdout.splitlines()
    assert lines[0].startswith(f"always-fails on {event_id} (INVOICE:FAILING): failed (retried) after ")
    assert lines[1].startswith(f"RuntimeError: cannot handle {event_id} (at failing.py:")
    assert "tests/plugins/failing.py" in failed.stdout  # the traceback's innermost frames

    # Nothing was recorded: no delivery, no own event for the failure, the event untouched.
    assert rows(config, "select count(*) from deliveries") == [(0,)]
    assert rows(config, "select id, source, status from events") == [(event_id, "gxm", "stored")]


def test_try_refuses_an_unknown_handler_or_event_in_one_line(make_config: ConfigFactory) -> None:
    config = make_config(handler_modules=["tests.plugins.failing"])
    missing = "0190f3c2-5b7e-7a1c-9d2e-3f4a5b6c7d8e"
    cases = [
        (["no-such-handler", "--event", missing], "hookyard try: no handler named 'no-such-handler' (handlers: "),
        (["always-fails", "--event", missing], f"hookyard try: no stored event {missing}"),
        (["always-fails", "--event", "nope"], "hookyard try: --event 'nope' is not an event id"),
    ]
    for args, message in cases:
        result = hookyard_try(config, *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(message)
        assert result.stderr.count("\n") == 1
        assert result.stdout == ""
