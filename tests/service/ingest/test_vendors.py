"""Any vendor (CONTRACT section 7) through a real `hookyard serve`: presets, locators, duplicates, Slack's handshake.

Each request is signed the way the vendor signs it, with the scheme's own
`sign()` (whose published vectors `tests/schemas/test_vendor_signatures.py`
checks). What a vendor sees is asserted, and what ingest queued for the
worker (action, time, vendor id, kept headers) is read back from the real
RQ job; whatever is refused leaves nothing queued.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis
from rq import Queue

from schemas.settings import Settings
from schemas.signatures import scheme_for
from schemas.wire import QueuedEvent
from tests.conftest import Process, make_url_db, write_config
from tests.service.conftest import assert_error, start_server
from workers.shared.serializer import JSONSerializer

STRIPE_SECRET = "whsec_stripe_test_0123456789"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GITHUB_SECRET = "github-secret"
SHOPIFY_SECRET = "shopify-secret"
SLACK_SECRET = "slack-signing-secret"

SOURCES: list[dict[str, Any]] = [
    {"name": "stripe", "preset": "stripe", "secrets": [STRIPE_SECRET]},
    {"name": "svix", "preset": "standard-webhooks", "secrets": [SW_SECRET]},
    {"name": "github", "preset": "github", "secrets": ["rotated-out", GITHUB_SECRET]},
    {"name": "shopify", "preset": "shopify", "secrets": [SHOPIFY_SECRET]},
    {"name": "slack", "preset": "slack", "secrets": [SLACK_SECRET]},
    {
        "name": "custom",
        "scheme": "hmac-sha256",
        "format": "json",
        "action": ["=billing", "json:/kind", "header:X-Verb"],
        "event_id": "json:/meta/uid",
        "sent_at": "json:/meta/at",
        "secrets": ["custom-secret"],
    },
    {"name": "nameless", "scheme": "hmac-sha256", "format": "json", "action": ["json:/kind"], "secrets": ["n"]},
    {"name": "patient", "preset": "stripe", "tolerance_seconds": 7200, "secrets": [STRIPE_SECRET]},
]


class Vendors:
    def __init__(self, base: str, client: redis.Redis, process: Process, settings: Settings) -> None:
        self.base = base
        self.settings = settings
        self.redis = client
        self.process = process
        self.http = httpx.Client(timeout=10)

    def post(
        self,
        name: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        message_id: str | None = None,
    ) -> httpx.Response:
        """POST `body` signed as the source's scheme signs (with its last configured secret unless given)."""
        source = self.settings.source(name)
        assert source is not None
        scheme = scheme_for(source.scheme, source.secrets)
        signed = scheme.sign(secret or source.secrets[-1], body, timestamp=timestamp, message_id=message_id)
        sent = {"Content-Type": "application/json", **(headers or {}), **signed}
        return self.http.post(f"{self.base}/webhooks/{name}", content=body, headers=sent)

    def queued(self) -> list[QueuedEvent]:
        queue = Queue("hookyard", connection=self.redis, serializer=JSONSerializer)
        return [msgspec.convert(e, QueuedEvent) for job in queue.get_jobs() for e in job.args[0]]

    def only_queued(self) -> QueuedEvent:
        events = self.queued()
        assert len(events) == 1, events
        return events[0]


@pytest.fixture(scope="module")
def vendors_server(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[Vendors]:
    database = 4 if not os.environ.get("HOOKYARD_TEST_REDIS_URL") else 11
    redis_url = make_url_db(redis_server, database)
    process, config = start_server(tmp_path_factory.mktemp("vendors"), redis_url, sources=SOURCES)
    client = redis.Redis.from_url(redis_url)
    yield Vendors(f"http://127.0.0.1:{config.settings.server.port}", client, process, config.settings)
    process.stop()
    client.flushdb()
    client.close()


@pytest.fixture
def vendors(vendors_server: Vendors) -> Iterator[Vendors]:
    vendors_server.redis.flushdb()
    offset = len(vendors_server.process.output())
    yield vendors_server
    output = vendors_server.process.output()[offset:]
    assert vendors_server.process.popen.poll() is None, output
    assert "Traceback" not in output, output


def stripe_event(event_id: str = "evt_1Nexample", kind: str = "payment_intent.succeeded", **extra: Any) -> bytes:
    document = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1_700_000_000,
        "type": kind,
        "livemode": False,
        "data": {"object": {"id": "pi_3Nexample", "object": "payment_intent", "amount": 2000, "currency": "eur"}},
        **extra,
    }
    return msgspec.json.encode({k: v for k, v in document.items() if v is not None})


# --- Stripe ---------------------------------------------------------------------------------------


def test_stripe_event_is_queued_with_its_action_id_time_and_headers(vendors: Vendors) -> None:
    body = stripe_event()
    response = vendors.post("stripe", body, {"User-Agent": "Stripe/1.0", "Authorization": "Bearer x", "Cookie": "c"})
    assert response.status_code == 202, response.text
    assert response.json()["data"]["duplicate"] is False
    event = vendors.only_queued()
    assert event.id == response.json()["data"]["id"]
    assert event.action == "PAYMENT_INTENT:SUCCEEDED"
    assert event.sent_at == 1_700_000_000
    assert event.vendor_event_id == "evt_1Nexample"
    assert event.whole_body is True
    assert event.body.encode() == body
    assert event.headers["user-agent"] == "Stripe/1.0"
    assert event.headers["content-type"] == "application/json"
    assert not {"authorization", "cookie", "stripe-signature"} & set(event.headers)


def test_stripe_retry_of_the_same_event_is_a_duplicate_whatever_the_body(vendors: Vendors) -> None:
    first = vendors.post("stripe", stripe_event("evt_retry"))
    assert first.status_code == 202, first.text
    again = vendors.post("stripe", stripe_event("evt_retry", pending_webhooks=0))  # a later copy differs
    assert again.status_code == 200, again.text
    assert again.json()["data"] == {"id": first.json()["data"]["id"], "status": "queued", "duplicate": True}
    other = vendors.post("stripe", stripe_event("evt_other"))
    assert other.status_code == 202
    assert len(vendors.queued()) == 2


@pytest.mark.parametrize("offset", [-600, 600])
def test_stripe_signature_outside_the_tolerance_is_401(vendors: Vendors, offset: int) -> None:
    response = vendors.post("stripe", stripe_event(), timestamp=int(time.time()) + offset)
    assert_error(response, 401, "ERR:MSG:SIGNATURE")
    assert vendors.queued() == []
    assert vendors.post("patient", stripe_event(), timestamp=int(time.time()) + offset).status_code == 202


def test_stripe_wrong_secret_or_tampered_body_is_401(vendors: Vendors) -> None:
    assert_error(vendors.post("stripe", stripe_event(), secret="whsec_wrong"), 401, "ERR:MSG:SIGNATURE")
    signed = scheme_for("stripe", [STRIPE_SECRET]).sign(STRIPE_SECRET, stripe_event())
    tampered = vendors.http.post(
        f"{vendors.base}/webhooks/stripe",
        content=stripe_event(kind="charge.refunded"),
        headers={"Content-Type": "application/json", **signed},
    )
    assert_error(tampered, 401, "ERR:MSG:SIGNATURE")
    assert vendors.queued() == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (stripe_event(event_id=None), "ERR:MSG:VALIDATION:EVENT_ID"),  # type: ignore[arg-type]
        (stripe_event(event_id=""), "ERR:MSG:VALIDATION:EVENT_ID"),
        (stripe_event(event_id={"nested": 1}), "ERR:MSG:VALIDATION:EVENT_ID"),  # type: ignore[arg-type]
        (stripe_event(created="yesterday"), "ERR:MSG:VALIDATION:SENT_AT"),
        (stripe_event(created=-5), "ERR:MSG:VALIDATION:SENT_AT"),
        (stripe_event(created=1.5), "ERR:MSG:VALIDATION:SENT_AT"),
        (stripe_event(kind=None), "ERR:MSG:VALIDATION:ACTION"),  # type: ignore[arg-type]
        (stripe_event(kind="..//"), "ERR:MSG:VALIDATION:ACTION"),
        (stripe_event(kind="x" * 129), "ERR:MSG:VALIDATION:ACTION"),
        (stripe_event(kind=7), "ERR:MSG:VALIDATION:ACTION"),  # type: ignore[arg-type]
        (b'[{"id": "evt_1"}]', "ERR:MSG:VALIDATION:BODY"),
        (b'"evt_1"', "ERR:MSG:VALIDATION:BODY"),
        (b'{"id": "evt_1", ', "ERR:MSG:VALIDATION:JSON"),
    ],
)
def test_a_body_the_locators_cannot_read_is_400_and_nothing_is_queued(vendors: Vendors, body: bytes, code: str) -> None:
    assert_error(vendors.post("stripe", body), 400, code)
    assert vendors.queued() == []
    assert list(vendors.redis.scan_iter("hookyard:fp:*")) == []


def test_a_long_action_within_128_characters_is_kept(vendors: Vendors) -> None:
    kind = ".".join(["abcdefghi"] * 12) + ".abcdefg"  # 127 characters
    assert vendors.post("stripe", stripe_event(kind=kind)).status_code == 202
    assert len(vendors.only_queued().action) == 127


# --- GitHub, Shopify, Standard Webhooks -----------------------------------------------------------


def github(vendors: Vendors, event: str, body: dict[str, Any], delivery: str | None = None) -> httpx.Response:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "X-Hub-Signature": "x"}
    return vendors.post("github", msgspec.json.encode(body), headers)


def test_github_actions_from_the_event_header_and_the_body(vendors: Vendors) -> None:
    assert github(vendors, "pull_request", {"action": "opened", "number": 1}).status_code == 202
    assert github(vendors, "push", {"ref": "refs/heads/main"}).status_code == 202
    assert github(vendors, "issues", {"action": None}).status_code == 202  # null: the part is skipped
    assert [e.action for e in vendors.queued()] == ["PULL_REQUEST:OPENED", "PUSH", "ISSUES"]
    push = vendors.queued()[1]
    assert push.headers["x-github-event"] == "push"
    assert "x-hub-signature" not in push.headers
    assert "x-hub-signature-256" not in push.headers
    assert abs(push.sent_at - time.time()) < 60  # GitHub sends no time: receipt time


def test_github_redelivery_is_a_duplicate_and_a_missing_delivery_id_is_400(vendors: Vendors) -> None:
    first = github(vendors, "push", {"ref": "a"}, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    again = github(vendors, "push", {"ref": "b"}, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    missing = vendors.post("github", b'{"ref": "a"}', {"X-GitHub-Event": "push"})
    assert_error(missing, 400, "ERR:MSG:VALIDATION:EVENT_ID")
    assert len(vendors.queued()) == 1


def test_shopify_topic_header(vendors: Vendors) -> None:
    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
    response = vendors.post("shopify", b'{"id": 820982911946154508, "email": "jon@example.com"}', headers)
    assert response.status_code == 202, response.text
    event = vendors.only_queued()
    assert (event.action, event.vendor_event_id) == ("ORDERS:CREATE", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    assert "x-shopify-hmac-sha256" not in event.headers
    no_topic = vendors.post("shopify", b"{}", {"X-Shopify-Webhook-Id": "other"})
    assert_error(no_topic, 400, "ERR:MSG:VALIDATION:ACTION")


def test_standard_webhooks_deduplicates_on_webhook_id_and_keeps_id_and_timestamp(vendors: Vendors) -> None:
    body = b'{"type": "user.created", "data": {"id": "user_29w83sxmDNGwOuEthce5gg56FcC"}}'
    first = vendors.post("svix", body, message_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    assert first.status_code == 202, first.text
    again = vendors.post("svix", body + b" ", message_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    assert again.status_code == 200
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    event = vendors.only_queued()
    assert event.action == "USER:CREATED"
    assert event.vendor_event_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert event.sent_at == int(event.headers["webhook-timestamp"])
    assert "webhook-id" in event.headers
    assert "webhook-signature" not in event.headers


# --- Slack ----------------------------------------------------------------------------------------


def test_slack_url_verification_is_answered_with_the_challenge_and_nothing_is_stored(vendors: Vendors) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = b'{"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "%s", "type": "url_verification"}' % challenge.encode()
    response = vendors.post("slack", body, {"X-Request-ID": "slack-1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == challenge
    assert response.headers["x-request-id"] == "slack-1"
    assert vendors.queued() == []
    assert list(vendors.redis.scan_iter("hookyard:fp:*")) == []
    unsigned = vendors.http.post(
        f"{vendors.base}/webhooks/slack", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(unsigned, 401, "ERR:MSG:SIGNATURE")


def test_slack_event_callback(vendors: Vendors) -> None:
    body = msgspec.json.encode(
        {"type": "event_callback", "event_id": "Ev08MFMKH6", "event": {"type": "app_mention", "text": "hi"}}
    )
    assert vendors.post("slack", body).status_code == 202
    assert vendors.post("slack", body, {"X-Slack-Retry-Num": "1"}).status_code == 200
    event = vendors.only_queued()
    assert (event.action, event.vendor_event_id) == ("EVENT_CALLBACK:APP_MENTION", "Ev08MFMKH6")
    assert event.sent_at == int(event.headers["x-slack-request-timestamp"])


# --- A hand-configured source ---------------------------------------------------------------------


def test_hand_configured_literal_json_and_header_locators(vendors: Vendors) -> None:
    body = msgspec.json.encode({"kind": "invoice/paid", "meta": {"uid": 42, "at": "1700000123"}})
    response = vendors.post("custom", body, {"X-Verb": "now"})
    assert response.status_code == 202, response.text
    event = vendors.only_queued()
    assert (event.action, event.vendor_event_id, event.sent_at) == ("BILLING:INVOICE:PAID:NOW", "42", 1_700_000_123)
    missing_time = msgspec.json.encode({"kind": "x", "meta": {"uid": 43}})
    assert_error(vendors.post("custom", missing_time), 400, "ERR:MSG:VALIDATION:SENT_AT")


def test_without_an_event_id_the_body_fingerprint_decides(vendors: Vendors) -> None:
    first = vendors.post("nameless", b'{"kind": "ping", "n": 1}')
    same = vendors.post("nameless", b'{ "n": 1, "kind": "ping" }')  # other whitespace and key order
    other = vendors.post("nameless", b'{"kind": "ping", "n": 2}')
    assert (first.status_code, same.status_code, other.status_code) == (202, 200, 202)
    assert vendors.queued()[0].vendor_event_id is None


# --- Configuration a format cannot use: `serve` exits 2 with one line -----------------------------


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ({"format": "xml"}, "sources[0].format: unknown format 'xml'"),
        ({"format": "json"}, "sources[0].action: format json needs at least one locator"),
        ({"action": ["json:/type"]}, "sources[0].action: format gxm reads it from `data`"),
    ],
)
def test_a_format_setting_that_cannot_work_stops_serve(tmp_path: Path, source: dict[str, Any], says: str) -> None:
    path = write_config(tmp_path / "bad.toml", {}, {"sources": [{"name": "s", "secrets": ["x"], **source}]})
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKYARD_")}
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"],
        env={**env, "HOOKYARD_CONFIG": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"hookyard: config error: {says}"), lines
    assert "Traceback" not in done.stderr
