"""`GET /v1/events` and `GET /v1/events/{id}` on real SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import create_engine, text

from schemas.ids import new_event_id
from schemas.tables import DeliveryStatus, EventStatus
from tests.service.api.conftest import ADMIN, READ, ingest


def _page(client, **params):
    response = client.get("/v1/events", params=params, headers=READ)
    assert response.status_code == 200, response.text
    return response.json()


def _walk(client, insert_between=None, **params):
    """Every page until next_cursor is null; `insert_between(page_no)` runs between pages."""
    seen, cursor, page_no = [], None, 0
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        body = _page(client, **query)
        seen += [event["id"] for event in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return seen
        page_no += 1
        if insert_between:
            insert_between(page_no)


def test_stored_event_round_trip_exact_payload_and_timestamps(client, worker, registry):
    registry.handler("LOCATION:*", name="crm")(lambda event: None)
    payload_text = '{"b": 1,  "a": "\\u0000x", "nested": {"z": [1, 2.50]}}'
    body = b'{"data": {"sent_at": 1564662600, "action": "LOCATION:CREATED", "payload": ' + payload_text.encode() + b"}}"
    from tests.conftest import gxm_headers  # noqa: PLC0415 - local to keep the exact-bytes case readable

    response = client.post("/webhooks/gxm", content=body, headers=gxm_headers())
    assert response.status_code == 202
    event_id = response.json()["data"]["id"]
    worker.drain()

    one = client.get(f"/v1/events/{event_id}", headers=READ)
    assert one.status_code == 200, one.text
    assert payload_text.encode() in one.content  # embedded as stored, never re-encoded
    event = one.json()["data"]
    assert event["sent_at"] == "2019-08-01T12:30:00Z"
    assert event["received_at"].endswith("Z")
    assert event["status"] == EventStatus.PROCESSED
    [delivery] = event["deliveries"]
    assert delivery["handler"] == "crm"
    assert delivery["status"] == DeliveryStatus.SUCCEEDED
    assert delivery["attempts"] == 1
    assert delivery["last_error"] is None
    assert delivery["updated_at"].endswith("Z")
    assert delivery["last_duration_ms"] is not None

    listed = _page(client)
    assert listed["meta"] == {"next_cursor": None, "limit": 50}
    assert listed["warnings"] == {}
    assert "payload" not in listed["data"][0]
    assert "deliveries" not in listed["data"][0]
    with_payload = client.get("/v1/events", params={"select": "payload,deliveries"}, headers=READ)
    assert payload_text.encode() in with_payload.content
    assert with_payload.json()["data"][0]["deliveries"][0]["handler"] == "crm"
    without = _page(client, select="payload,-payload")
    assert "payload" not in without["data"][0]


def test_newest_first_then_asc_and_limit(client, insert_events):
    ids = insert_events(5)
    assert [e["id"] for e in _page(client)["data"]] == ids[::-1]
    assert [e["id"] for e in _page(client, order="asc")["data"]] == ids
    two = _page(client, limit=2)
    assert [e["id"] for e in two["data"]] == ids[:-3:-1]
    assert two["meta"]["limit"] == 2
    assert two["meta"]["next_cursor"]


def test_filters(client, insert_events):
    now = datetime.now(UTC)
    created = insert_events(2, action="LOCATION:CREATED", start=now - timedelta(hours=3))
    deleted = insert_events(2, action="LOCATION:DELETED", start=now - timedelta(hours=2))
    user = insert_events(1, action="USER:DELETED", status=EventStatus.FAILED, start=now - timedelta(hours=1))
    deep = insert_events(1, action="LOCATION:CREATED:NOW", source="other", start=now - timedelta(minutes=30))

    def ids(**params):
        return set(_walk(client, **params))

    assert ids(action="LOCATION:CREATED") == set(created)
    assert ids(action="LOCATION:*") == set(created + deleted)  # not LOCATION:CREATED:NOW
    assert ids(action="*:DELETED") == set(deleted + user)
    assert ids(action="LOCATION:CREATED:NOW") == set(deep)
    assert ids(source="other") == set(deep)
    assert ids(source="nobody") == set()
    assert ids(status="failed") == set(user)
    since = (now - timedelta(hours=2, minutes=30)).isoformat()
    until = (now - timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(since=since, until=until) == set(deleted + user)
    assert ids(since=since, action="*:DELETED", status="processed") == set(deleted)


def test_vendor_shaped_actions_and_patterns(client, insert_events):
    """One-part actions (GitHub's PUSH) and patterns of any length (CONTRACT section 7)."""
    push = insert_events(1, action="PUSH")
    pull = insert_events(2, action="PULL_REQUEST:OPENED")
    sub = insert_events(1, action="CUSTOMER:SUBSCRIPTION:UPDATED")
    delivery = insert_events(1, action="HOOKYARD:DELIVERY:DEAD")
    underscore = insert_events(1, action="PULLXREQUEST:OPENED")  # `_` is no LIKE wildcard here

    def ids(action):
        return set(_walk(client, action=action))

    assert ids("PUSH") == set(push)
    assert ids("PUSH:*") == set()
    assert ids("PULL_REQUEST:*") == set(pull)
    assert ids("PULL_REQUEST") == set()
    assert ids("*:OPENED") == set(pull + underscore)
    assert ids("CUSTOMER:SUBSCRIPTION:UPDATED") == set(sub)
    assert ids("*:*:UPDATED") == set(sub)
    assert ids("CUSTOMER:*:*") == set(sub)
    assert ids("HOOKYARD:DELIVERY:*") == set(delivery)
    assert ids("*:*:*") == set(sub + delivery)
    assert ids("*:*") == set(pull + underscore)
    assert ids("*") == set(push + pull + sub + delivery + underscore)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "LIMIT"),
        ({"limit": 1001}, "LIMIT"),
        ({"limit": "ten"}, "LIMIT"),
        ({"action": "location:created"}, "ACTION"),
        ({"action": "LOCATION:"}, "ACTION"),
        ({"action": "A::B"}, "ACTION"),
        ({"action": "LOC-ATION:*"}, "ACTION"),
        ({"action": "**"}, "ACTION"),
        ({"action": "A:**"}, "ACTION"),
        ({"action": "A" * 129}, "ACTION"),
        ({"status": "dead"}, "STATUS"),
        ({"since": "yesterday"}, "SINCE"),
        ({"until": "2026-13-01"}, "UNTIL"),
        ({"order": "up"}, "ORDER"),
        ({"select": "body"}, "SELECT"),
        ({"cursor": "garbage!"}, "CURSOR"),
        ({"cursor": base64.urlsafe_b64encode(b"\x93\x01\x02\x03").decode()}, "CURSOR"),
    ],
)
def test_bad_parameters_are_400_naming_what(client, params, code):
    response = client.get("/v1/events", params=params, headers=READ)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["meta"]["code"] == f"ERR:MSG:VALIDATION:{code}"
    assert body["data"]["status"] == 400
    assert body["warnings"] == {}


def test_cursor_refused_with_other_filters_or_order(client, insert_events):
    insert_events(3)
    cursor = _page(client, limit=1, action="LOCATION:*")["meta"]["next_cursor"]
    assert _page(client, limit=1, action="LOCATION:*", cursor=cursor)["data"]
    for params in ({"action": "LOCATION:CREATED"}, {"order": "asc", "action": "LOCATION:*"}, {}):
        response = client.get("/v1/events", params=dict(params, cursor=cursor), headers=READ)
        assert response.status_code == 400
        assert response.json()["meta"]["code"] == "ERR:MSG:VALIDATION:CURSOR"


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_pages_return_every_event_once_while_inserts_happen(client, insert_events, order):
    now = datetime.now(UTC)
    wanted = insert_events(23, start=now - timedelta(hours=2), step=timedelta(seconds=10), action="LOCATION:CREATED")
    insert_events(7, start=now - timedelta(hours=2), step=timedelta(seconds=7), action="USER:CREATED")
    late = []

    def insert_more(page_no):
        # Newer rows (and a row older than every page, as a late-stored event would be).
        late.extend(insert_events(2, start=now + timedelta(minutes=page_no), action="LOCATION:UPDATED"))
        insert_events(1, start=now - timedelta(hours=3, minutes=page_no), action="LOCATION:UPDATED")

    seen = _walk(client, insert_between=insert_more, limit=4, order=order, action="LOCATION:*")
    assert len(seen) == len(set(seen)), "an event came twice"
    assert set(wanted) <= set(seen)
    if order == "asc":
        assert set(late) <= set(seen)  # rows that sort after the position appear
    else:
        assert not set(late) & set(seen)  # newer than the first page: they never shift a page


def test_one_event_unknown_or_malformed_is_404(client):
    for event_id in (new_event_id(), "not-an-id", "0" * 36, "01a20856-3016-438b-a446-277ac917831e"):
        response = client.get(f"/v1/events/{event_id}", headers=READ)
        assert response.status_code == 404, event_id
        assert response.json()["meta"]["code"] == "ERR:MSG:NOT_FOUND"


def test_accepted_but_not_yet_stored_is_404(client):
    event_id = ingest(client)
    response = client.get(f"/v1/events/{event_id}", headers=ADMIN)
    assert response.status_code == 404


def test_cursor_is_opaque_base64url(client, insert_events):
    insert_events(2)
    cursor = _page(client, limit=1)["meta"]["next_cursor"]
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert isinstance(msgspec.msgpack.decode(raw), list)


EDGE_TIMES = [
    ("since", "0001-01-01T00:00:00+01:00"),
    ("since", "0001-01-01T00:00:00Z"),
    ("since", "9999-12-31T23:59:59Z"),
    ("until", "9999-12-31T23:59:59-01:00"),
    ("until", "9999-12-31T23:59:59.999999Z"),
    ("until", "0001-01-01"),
]


@pytest.mark.parametrize("path", ["/v1/events", "/v1/stats", "/v1/stream"])
@pytest.mark.parametrize(("name", "value"), EDGE_TIMES)
def test_times_at_the_ends_of_the_calendar_are_an_answer_or_a_400_never_a_500(client, path, name, value):
    if path == "/v1/stats" and name == "until":
        return  # stats takes `since` only
    outside = value.endswith(("+01:00", "-01:00"))  # in UTC: year 0 or year 10000
    if path == "/v1/stream" and not outside:
        return  # an open stream never ends; its filters are the list's, checked above
    response = client.get(path, params={name: value}, headers=READ)
    if not outside:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["meta"]["code"] == f"ERR:MSG:VALIDATION:{name.upper()}", body
    assert "out of range" in body["data"]["detail"]


def test_a_page_of_big_payloads_ends_at_the_byte_budget_and_its_cursor_gives_the_rest(client, insert_events, config):
    """`limit=1000&select=payload` of 1 MiB payloads: a page holds about `max_page_bytes`, not 1,000 MiB."""
    budget = config.settings.server.max_page_bytes
    count = budget // 2**20 + 4
    ids = insert_events(count)
    blob = '{"blob": "' + "x" * (2**20 - 12) + '"}'
    engine = create_engine(config.settings.database.url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE events SET payload = :blob"), {"blob": blob})
    engine.dispose()

    seen, pages, cursor = [], [], None
    while True:
        params = {"limit": 1000, "select": "payload", **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/events", params=params, headers=READ)
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        pages.append(len(body["data"]))
        assert sum(len(e["payload"]["blob"]) for e in body["data"]) <= budget + 2**20  # one row may cross it
        assert all(e["payload"] == msgspec.json.decode(blob) for e in body["data"])
        seen += [e["id"] for e in body["data"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert pages[0] < count  # fewer than asked for: the budget ended the page
    assert len(pages) >= 2
    assert sorted(seen) == sorted(ids)  # every event exactly once through the cursors
    assert len(seen) == len(set(seen))

    # Without payloads the budget does not apply: one page.
    plain = client.get("/v1/events", params={"limit": 1000}, headers=READ).json()
    assert len(plain["data"]) == count
    assert plain["meta"]["next_cursor"] is None
