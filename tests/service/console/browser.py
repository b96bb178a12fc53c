"""Playwright on Debian's Chromium, for the console's browser tests; a screenshot of every failure.

Chromium comes from the system (`apt-get install -y chromium`; `.ci/run`
installs it when missing), never downloaded by Playwright. Without it the
browser tests fail with one line saying so: they never skip silently.
The flags keep Chromium off the network (no updates, sync, QUIC or
background fetches) and each test gets a fresh profile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("HOOKYARD_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
"""Longest any one browser step waits."""
ARTIFACTS = Path(os.environ.get("HOOKYARD_TEST_ARTIFACTS", "test-artifacts")) / "browser"
"""Where a failed browser test leaves its screenshot."""


def require_browser() -> Any:
    """Playwright's sync API, or a one-line failure saying what is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does this)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the browser tests need it
    except ImportError:
        pytest.fail("browser tests need the playwright package: make (requirements.lock) installs it", pytrace=False)
    return sync_playwright


@contextmanager
def browser_page(profile: Path) -> Iterator[Any]:
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


def screenshot_on_failure(page: Any, node: pytest.Item) -> Path | None:
    report = getattr(node, "rep_call", None)
    if report is None or not report.failed:
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in node.nodeid)[-150:]
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
