"""The console in a real headless Chromium against real `hookyard serve` and `hookyard worker` processes.

Sign-in, one event's page, an admin's replay click, the live tail, and a read
key that sees no replay buttons (and whose forged POST is refused). Each test
is bounded in time; a failure leaves a screenshot under `test-artifacts/browser/`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, READ_KEY, Config, ConfigFactory, Process, gxm_body, gxm_headers, wait_for
from tests.service.console.browser import browser_page, screenshot_on_failure

pytestmark = [pytest.mark.process, pytest.mark.timeout(120)]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite: the pages run the read API's query code, which the API tests cover on both databases."""
    return sqlite_url


@pytest.fixture
def console(make_config: ConfigFactory, server_for: Callable[..., str], spawn: Callable[..., Process]) -> str:
    """A real server and worker, with the `make run` demo handler (`demo-flaky`: fails once on `"fail": true`)."""
    config: Config = make_config(handler_modules=["workers.builtin", "workers.demo"])
    base = server_for(config)
    spawn(["worker"], config.env(), name="worker")
    return base


@pytest.fixture
def page(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with browser_page(tmp_path / "profile") as opened:
        yield opened
        shot = screenshot_on_failure(opened, request.node)
        if shot is not None:
            print(f"screenshot of the failure: {shot}")


def post_event(base: str, **payload: Any) -> str:
    body = gxm_body(payload={"n": uuid.uuid4().hex, **payload})
    response = httpx.post(f"{base}/webhooks/gxm", content=body, headers=gxm_headers(), timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def delivery_status(base: str, event_id: str, handler: str) -> str | None:
    response = httpx.get(f"{base}/v1/events/{event_id}", headers={"X-API-Key": READ_KEY}, timeout=10)
    if response.status_code != 200:
        return None
    return {d["handler"]: d["status"] for d in response.json()["data"]["deliveries"]}.get(handler)


def sign_in(page: Any, base: str, key: str, path: str = "/ui/") -> None:
    page.goto(f"{base}{path}")
    page.wait_for_url(re.compile(r"/ui/login\?"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_a_wrong_key_then_the_right_one(console: str, page: Any) -> None:
    sign_in(page, console, "not-the-key")
    assert page.get_by_role("alert").inner_text() == "That key is not a configured API key."
    page.get_by_label("API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/?$"))
    assert page.get_by_role("heading", name=re.compile("Overview")).is_visible()
    assert page.locator("svg.chart").is_visible()
    assert page.locator('[data-stat="events-total"]').inner_text() == "0"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    page.goto(f"{console}/ui/events")
    page.wait_for_url(re.compile(r"/ui/login\?next="))


def test_an_admin_opens_a_dead_event_and_replays_it_with_a_click(console: str, page: Any) -> None:
    event_id = post_event(console, fail=True)
    wait_for(lambda: delivery_status(console, event_id, "demo-flaky") == "dead", timeout=20, what="a dead delivery")
    sign_in(page, console, ADMIN_KEY, "/ui/events")
    page.wait_for_url(f"{console}/ui/events")
    page.get_by_role("link", name=event_id).click()
    page.wait_for_url(f"{console}/ui/events/{event_id}")
    assert page.locator(f'article[data-event-id="{event_id}"]').is_visible()
    assert '"fail": true' in page.locator("pre[data-payload]").inner_text()
    row = page.locator('tr[data-handler="demo-flaky"]')
    assert row.get_attribute("data-status") == "dead"
    assert "asked to fail" in row.inner_text()

    page.get_by_role("button", name="Replay demo-flaky").click()
    page.wait_for_url(re.compile(r"replayed="))
    assert "Queued again: demo-flaky." in page.get_by_role("status").inner_text()
    wait_for(lambda: delivery_status(console, event_id, "demo-flaky") == "succeeded", timeout=20, what="the replay")
    page.reload()
    assert page.locator('tr[data-handler="demo-flaky"]').get_attribute("data-status") == "succeeded"


def test_the_live_tail_shows_new_events_without_a_reload(console: str, page: Any) -> None:
    sign_in(page, console, READ_KEY, "/ui/live")
    page.wait_for_url(f"{console}/ui/live")
    page.locator("[data-live-state]", has_text="live").wait_for()
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    first, second = post_event(console), post_event(console)
    page.locator(f'tr[data-event-id="{second}"]').wait_for()
    page.locator(f'tr[data-event-id="{first}"]').wait_for()
    rows = page.locator("tbody[data-live-rows] tr").evaluate_all("rows => rows.map(r => r.dataset.eventId)")
    assert rows[:2] == [second, first]  # newest at the top
    assert loads == []  # no reload happened


def test_a_read_key_sees_no_replay_buttons_and_its_forged_post_is_refused(console: str, page: Any) -> None:
    event_id = post_event(console, fail=True)
    wait_for(lambda: delivery_status(console, event_id, "demo-flaky") == "dead", timeout=20, what="a dead delivery")
    sign_in(page, console, READ_KEY, f"/ui/events/{event_id}")
    page.wait_for_url(f"{console}/ui/events/{event_id}")
    assert page.locator('tr[data-handler="demo-flaky"]').get_attribute("data-status") == "dead"
    assert page.get_by_role("button", name=re.compile("Replay")).count() == 0
    page.goto(f"{console}/ui/dead")
    assert page.locator('tr[data-handler="demo-flaky"]').first.is_visible()
    assert page.get_by_role("link", name=re.compile("Replay")).count() == 0
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    forged = page.request.post(
        f"{console}/ui/events/{event_id}/replay", form={"csrf": token, "handler": "demo-flaky"}, max_redirects=0
    )
    assert forged.status == 403
    assert delivery_status(console, event_id, "demo-flaky") == "dead"


def test_an_admin_replays_dead_letters_in_bulk_after_the_count_and_watches_it_finish(console: str, page: Any) -> None:
    dead = [post_event(console, fail=True) for _ in range(3)]
    for event_id in dead:
        wait_for(lambda e=event_id: delivery_status(console, e, "demo-flaky") == "dead", timeout=20, what="dead")
    sign_in(page, console, ADMIN_KEY, "/ui/dead")
    page.wait_for_url(f"{console}/ui/dead")
    assert page.locator('tr[data-handler="demo-flaky"] [data-dead-count]').inner_text() == "3"
    page.get_by_role("link", name="Replay dead deliveries of demo-flaky").click()
    count = page.locator("[data-dry-run-deliveries]")
    assert count.get_attribute("data-dry-run-deliveries") == "3"
    page.get_by_role("button", name="Replay 3 deliveries").click()
    page.wait_for_url(re.compile(r"/ui/replays/"))
    page.locator('[data-replay-status="done"]').wait_for()  # updated in place by the page's script
    assert page.locator('[data-field="queued"]').inner_text() == "3"
    for event_id in dead:
        wait_for(lambda e=event_id: delivery_status(console, e, "demo-flaky") == "succeeded", timeout=20, what="run")
    page.goto(f"{console}/ui/dead")
    assert "No dead deliveries" in page.locator("main").inner_text()


def test_an_admin_pauses_a_handler_and_resumes_it_from_the_handlers_page(console: str, page: Any) -> None:
    sign_in(page, console, ADMIN_KEY, "/ui/handlers")
    page.wait_for_url(f"{console}/ui/handlers")
    row = page.locator('tr[data-handler="demo-flaky"]')
    assert row.get_attribute("data-paused") == "false"
    page.get_by_role("button", name="Pause demo-flaky").click()
    page.wait_for_url(re.compile(r"/ui/handlers\?"))
    assert page.get_by_role("status").inner_text().startswith("Paused demo-flaky")
    assert row.get_attribute("data-paused") == "true"
    listed = httpx.get(f"{console}/v1/handlers", headers={"X-API-Key": READ_KEY}, timeout=10).json()["data"]
    assert {h["name"]: h["paused"] for h in listed} == {"demo-flaky": True, "log-event": False}

    event_id = post_event(console)
    wait_for(lambda: delivery_status(console, event_id, "log-event") == "succeeded", timeout=20, what="log-event")
    assert delivery_status(console, event_id, "demo-flaky") == "pending"

    page.get_by_role("button", name="Resume demo-flaky").click()
    page.wait_for_url(re.compile(r"/ui/handlers\?"))
    assert row.get_attribute("data-paused") == "false"
    wait_for(lambda: delivery_status(console, event_id, "demo-flaky") == "succeeded", timeout=20, what="resumed")


def test_a_read_session_sees_no_pause_button_and_its_forged_pause_is_refused(console: str, page: Any) -> None:
    sign_in(page, console, READ_KEY, "/ui/handlers")
    page.wait_for_url(f"{console}/ui/handlers")
    assert page.get_by_role("button", name=re.compile("Pause")).count() == 0
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert token is None or token  # a read page may carry no form at all
    forged = page.request.post(f"{console}/ui/handlers/demo-flaky/pause", form={"csrf": token or ""}, max_redirects=0)
    assert forged.status == 403
    listed = httpx.get(f"{console}/v1/handlers", headers={"X-API-Key": READ_KEY}, timeout=10).json()["data"]
    assert not any(h["paused"] for h in listed)
