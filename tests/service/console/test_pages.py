"""Console pages over real SQL and Redis: what they show, the replay buttons, and bad input as clear pages."""

from __future__ import annotations

import re

import pytest

from tests.service.api.conftest import READ
from tests.service.console.conftest import ADMIN_KEY, READ_KEY, csrf_of, ingest, sign_in
from workers.event import Event, PermanentError

CSP = "default-src 'self'"


@pytest.fixture
def failing(registry):
    """`crm` goes dead on its first attempt and succeeds on a replay; `audit` always succeeds."""

    def crm(event: Event) -> None:
        if event.attempt == 1:
            raise PermanentError("crm said <no> & meant it")

    registry.handler("LOCATION:*", name="crm")(crm)
    registry.handler("LOCATION:*", name="audit")(lambda event: None)


def test_the_event_page_shows_payload_deliveries_and_hooks(client, worker, failing):
    event_id = ingest(client, payload={"company_id": 42, "name": "<b>Hotel</b>", "nested": {"z": [1, 2.50]}})
    worker.drain()
    sign_in(client, READ_KEY)
    page = client.get(f"/ui/events/{event_id}")
    assert page.status_code == 200
    assert CSP in page.headers["content-security-policy"]
    html = page.text
    assert f'data-event-id="{event_id}"' in html
    assert re.search(r'data-handler="crm" data-status="dead"', html)
    assert re.search(r'data-handler="audit" data-status="succeeded"', html)
    assert "crm said &lt;no&gt; &amp; meant it" in html  # escaped, never markup
    assert "&lt;b&gt;Hotel&lt;/b&gt;" in html
    assert "{\n  &#34;company_id&#34;: 42,\n" in html  # pretty-printed (and escaped)
    assert "2.5\n" in html  # numbers as stored, not re-spelt
    assert "<script>" not in html.split("</head>")[1]  # no inline script anywhere in the body
    assert "style=" not in html
    assert "Replay" not in html  # a read session has no replay button
    headers = html[html.index("data-headers") : html.index("</table>", html.index("data-headers"))]
    assert '<th scope="row">content-type</th><td>application/json</td>' in headers  # kept headers, lower-case
    assert "apisignature" not in headers.lower()  # never the signature


def test_an_admin_replays_one_handler_from_the_event_page(client, worker, failing):
    event_id = ingest(client)
    worker.drain()
    sign_in(client, ADMIN_KEY)
    page = client.get(f"/ui/events/{event_id}")
    assert 'aria-label="Replay crm"' in page.text
    assert "Replay all" in page.text
    done = client.post(
        f"/ui/events/{event_id}/replay", data={"csrf": csrf_of(page.text), "handler": "crm"}, follow_redirects=False
    )
    assert done.status_code == 303
    back = client.get(done.headers["location"])
    assert "Queued again: crm." in back.text
    assert 'data-handler="crm" data-status="pending"' in back.text
    worker.drain()
    event = client.get(f"/v1/events/{event_id}", headers=READ).json()["data"]
    assert event["status"] == "processed"
    assert {d["handler"]: d["attempts"] for d in event["deliveries"]} == {"audit": 1, "crm": 2}


def test_a_replay_post_without_the_token_or_from_a_read_session_is_403(client, worker, failing):
    event_id = ingest(client)
    worker.drain()
    sign_in(client, ADMIN_KEY)
    no_token = client.post(f"/ui/events/{event_id}/replay", data={"handler": "crm"}, follow_redirects=False)
    assert no_token.status_code == 403
    assert "CSRF" in no_token.text
    client.cookies.clear()
    sign_in(client, READ_KEY)
    page = client.get("/ui/")
    forged = client.post(
        f"/ui/events/{event_id}/replay", data={"csrf": csrf_of(page.text), "handler": "crm"}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert "admin" in forged.text
    assert client.post("/ui/replays", data={"csrf": csrf_of(page.text), "handler": "crm"}).status_code == 403
    assert client.get("/ui/dead/plan", params={"handler": "crm"}).status_code == 403
    dead = client.get(f"/v1/events/{event_id}", headers=READ).json()["data"]["deliveries"]
    assert {d["handler"]: d["status"] for d in dead}["crm"] == "dead"  # nothing changed


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/ui/events", {"action": "lower:case"}),
        ("/ui/events", {"status": "sideways"}),
        ("/ui/events", {"since": "last tuesday"}),
        ("/ui/events", {"cursor": "%%%"}),
        ("/ui/events", {"source": "\x00"}),
        ("/ui/dead", {"handler": "\x00"}),
        ("/ui/rejections", {"code": "\x00"}),
        ("/ui/dead", {"action": "nope"}),
        ("/ui/dead", {"cursor": "AAAA"}),
        ("/ui/rejections", {"until": "2026-13-45"}),
        ("/ui/rejections", {"cursor": "x" * 400}),
        ("/ui/live", {"status": "bogus"}),
        ("/ui/events/not-an-id", {}),
        ("/ui/replays/not-an-id", {}),
        ("/ui/replays/01a20856-3016-738b-a446-277ac917831e/progress", {}),
    ],
)
def test_garbage_in_page_urls_is_a_clear_page_never_a_500(client, path, params):
    sign_in(client, ADMIN_KEY)
    response = client.get(path, params=params)
    assert response.status_code in (400, 404), (response.status_code, response.text[:500])
    assert "text/html" in response.headers["content-type"]
    assert CSP in response.headers["content-security-policy"]
    assert "Traceback" not in response.text
    assert 'role="alert"' in response.text or "data-error-status" in response.text


def test_events_page_filters_and_keyset_pages(client, insert_events):
    ids = insert_events(60, action="BOOKING:CREATED")
    other = insert_events(1, action="USER:DELETED")
    sign_in(client, READ_KEY)
    first = client.get("/ui/events", params={"action": "BOOKING:*"})
    assert first.status_code == 200
    shown = re.findall(r'<tr data-event-id="([^"]+)"', first.text)
    assert shown == ids[::-1][:50]
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert re.findall(r'<tr data-event-id="([^"]+)"', second.text) == ids[::-1][50:]
    assert 'rel="next"' not in second.text
    assert other[0] not in first.text + second.text


def test_dead_letters_count_confirm_and_progress(client, worker, failing, config):
    for _ in range(3):
        ingest(client)
    worker.drain()
    sign_in(client, ADMIN_KEY)
    dead = client.get("/ui/dead")
    assert re.search(
        r'<tr data-handler="crm" data-status="dead">\s*<th scope="row"><a [^>]+>crm</a></th>\s*'
        r'<td class="num" data-dead-count="3">3</td>',
        dead.text,
    )
    assert len(re.findall(r'data-status="dead">\s*<td><time', dead.text)) == 3
    plan = client.get("/ui/dead/plan", params={"handler": "crm"})
    assert 'data-dry-run-deliveries="3" data-dry-run-events="3"' in plan.text
    created = client.post("/ui/replays", data={"csrf": csrf_of(plan.text), "handler": "crm"}, follow_redirects=False)
    assert created.status_code == 303
    location = created.headers["location"]
    assert location.startswith("/ui/replays/")
    progress = client.get(f"{location}/progress").json()
    assert (progress["deliveries"], progress["events"]) == (3, 3)

    worker.drain()  # the replay's job, then the run jobs it queued
    page = client.get(location)
    assert 'data-replay-status="done"' in page.text
    assert '<progress value="3" max="3"' in page.text
    assert "No dead deliveries" in client.get("/ui/dead").text


def test_handlers_rejections_and_overview_pages(client, worker, failing):
    ingest(client)
    client.post("/webhooks/gxm", content=b"{}", headers={"Content-Type": "application/json"})
    worker.drain()
    sign_in(client, READ_KEY)
    handlers = client.get("/ui/handlers").text
    assert re.search(r'<tr data-handler="crm" data-paused="false">', handlers)
    assert "LOCATION:*" in handlers
    overview = client.get("/ui/")
    assert overview.status_code == 200
    assert 'data-stat="events-total">2<' in overview.text  # the event and its dead delivery's own event
    assert 'data-stat="events-failed">1<' in overview.text
    assert '<svg class="chart"' in overview.text
    assert re.search(r'<path class="area-events" d="M0 200L', overview.text)
    assert client.get("/ui/rejections").status_code == 200


def test_assets_and_unknown_pages_carry_the_policy(client):
    css = client.get("/ui/static/console.css")
    assert css.status_code == 200
    assert CSP in css.headers["content-security-policy"]
    assert (
        client.get("/ui/static/console.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )
    missing = client.get("/ui/static/nope.js")
    assert missing.status_code == 404
    assert CSP in missing.headers["content-security-policy"]
    sign_in(client, READ_KEY)
    unknown = client.get("/ui/nowhere")
    assert unknown.status_code == 404
    assert 'data-error-status="404"' in unknown.text
