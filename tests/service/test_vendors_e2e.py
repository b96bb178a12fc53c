"""A vendor's webhook, end to end, as a new user sends it: real `hookyard serve`, real `hookyard worker`.

Stripe via `hookyard send --source stripe --body event.json`; GitHub, Shopify,
Slack and a Standard Webhooks sender by plain HTTP signed as those vendors
sign. Each reaches its handler with `event.vendor_event_id`, `event.headers`
and the exact body as `event.payload`; the read API returns the stored
headers (`select=headers`) and filters on vendor actions.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec

from schemas.signatures import scheme_for
from tests.conftest import ADMIN_KEY, Config, ConfigFactory, Process, rows, wait_for
from tests.plugins.vendors import recorded

STRIPE_SECRET = "whsec_e2e_stripe"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SOURCES = [
    {"name": "stripe", "preset": "stripe", "secrets": [STRIPE_SECRET]},
    {"name": "github", "preset": "github", "secrets": ["gh-secret"]},
    {"name": "shopify", "preset": "shopify", "secrets": ["shop-secret"]},
    {"name": "slack", "preset": "slack", "secrets": ["slack-secret"]},
    {"name": "clerk", "preset": "standard-webhooks", "secrets": [SW_SECRET]},
]
API = {"X-API-Key": ADMIN_KEY}


def signed_post(base: str, config: Config, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    settings = config.settings.source(source)
    assert settings is not None
    signature = scheme_for(settings.scheme, settings.secrets).sign(settings.secrets[0], body)
    sent = {"Content-Type": "application/json", **headers, **signature}
    return httpx.post(f"{base}/webhooks/{source}", content=body, headers=sent, timeout=10)


def send_file(config: Config, source: str, body: Path) -> subprocess.CompletedProcess[str]:
    """`hookyard send --source SOURCE --body FILE`, as a user runs it."""
    argv = [sys.executable, "-m", "service.cli", "send", "--source", source, "--body", str(body)]
    return subprocess.run(argv, env=config.env(), capture_output=True, text=True, timeout=60, check=False)


def test_vendor_webhooks_reach_their_handlers_with_ids_headers_and_the_exact_body(
    make_config: ConfigFactory, spawn: Callable[..., Process], server_for: Callable[[Config], str], tmp_path: Path
) -> None:
    config = make_config(sources=SOURCES, handler_modules=["tests.plugins.vendors"])
    record = tmp_path / "record.jsonl"
    env = config.env(HOOKYARD_TEST_RECORD=str(record))
    base = server_for(config)
    spawn(["worker"], env, name="worker")

    # Stripe, the way a new user tries it: the CLI signs and sends their own body.
    stripe_body = (
        b'{"id": "evt_3QeE2e", "object": "event", "created": 1700000000, "type": "payment_intent.succeeded",\n'
        b' "data": {"object": {"id": "pi_3QeE2e", "amount": 2000, "note": "caf\\u00e9 \\u0000"}}}'
    )
    event_file = tmp_path / "event.json"
    event_file.write_bytes(stripe_body)
    sent = send_file(config, "stripe", event_file)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.startswith("202 "), sent.stdout
    stripe_id = msgspec.json.decode(sent.stdout.split(" ", 1)[1])["data"]["id"]
    again = send_file(config, "stripe", event_file)
    assert again.stdout.startswith("200 "), again.stdout  # Stripe's retry of evt_3QeE2e
    assert msgspec.json.decode(again.stdout.split(" ", 1)[1])["data"] == {
        "id": stripe_id,
        "status": "queued",
        "duplicate": True,
    }

    delivery = str(uuid.uuid4())
    pull = signed_post(
        base,
        config,
        "github",
        b'{"action": "opened", "number": 7, "pull_request": {"title": "Add vendors"}}',
        {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery, "User-Agent": "GitHub-Hookshot/e2e"},
    )
    push = signed_post(
        base, config, "github", b'{"ref": "refs/heads/main"}', {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-2"}
    )
    shop = signed_post(
        base,
        config,
        "shopify",
        b'{"id": 1, "email": "jon@example.com"}',
        {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "w-1"},
    )
    slack_challenge = signed_post(base, config, "slack", b'{"type": "url_verification", "challenge": "ch-1"}', {})
    slack = signed_post(
        base,
        config,
        "slack",
        b'{"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}',
        {},
    )
    clerk = signed_post(base, config, "clerk", b'{"type": "customer.subscription.updated", "data": {}}', {})
    for response in (pull, push, shop, slack, clerk):
        assert response.status_code == 202, response.text
    assert (slack_challenge.status_code, slack_challenge.text) == (200, "ch-1")

    def all_handled() -> list[dict[str, Any]] | None:
        runs = recorded(record)
        return runs if len(runs) == 6 else None

    runs = {run["handler"] + ":" + run["action"]: run for run in wait_for(all_handled, 30, what="six handler runs")}
    assert set(runs) == {
        "stripe-payments:PAYMENT_INTENT:SUCCEEDED",
        "github-pulls:PULL_REQUEST:OPENED",
        "github-push:PUSH",
        "the-rest:ORDERS:CREATE",
        "the-rest:EVENT_CALLBACK:APP_MENTION",
        "three-part-updates:CUSTOMER:SUBSCRIPTION:UPDATED",
    }
    stripe = runs["stripe-payments:PAYMENT_INTENT:SUCCEEDED"]
    assert stripe["id"] == stripe_id
    assert stripe["vendor_event_id"] == "evt_3QeE2e"
    assert stripe["sent_at"] == 1700000000
    assert stripe["payload"] == msgspec.json.decode(stripe_body)
    assert "stripe-signature" not in stripe["headers"]
    assert stripe["headers"]["content-type"] == "application/json"
    github = runs["github-pulls:PULL_REQUEST:OPENED"]
    assert github["vendor_event_id"] == delivery
    assert github["headers"]["user-agent"] == "GitHub-Hookshot/e2e"
    assert github["headers"]["x-github-event"] == "pull_request"
    assert "x-hub-signature-256" not in github["headers"]
    assert runs["github-push:PUSH"]["payload"] == {"ref": "refs/heads/main"}
    clerk_run = runs["three-part-updates:CUSTOMER:SUBSCRIPTION:UPDATED"]
    assert clerk_run["vendor_event_id"] == clerk_run["headers"]["webhook-id"]
    assert "webhook-signature" not in clerk_run["headers"]

    # Stored byte for byte, once; read back with its headers; filtered by vendor action.
    assert rows(config, "select body, payload, vendor_event_id from events where id = :i", i=stripe_id) == [
        (stripe_body.decode(), stripe_body.decode(), "evt_3QeE2e")
    ]
    assert rows(config, "select count(*) from events")[0][0] == 6
    one = httpx.get(f"{base}/v1/events/{stripe_id}", params={"select": "headers"}, headers=API, timeout=10)
    assert one.status_code == 200, one.text
    assert stripe_body in one.content  # the payload, exactly as sent
    assert one.json()["data"]["headers"]["content-type"] == "application/json"
    assert "stripe-signature" not in one.json()["data"]["headers"]
    pulls = httpx.get(
        f"{base}/v1/events", params={"action": "PULL_REQUEST:*", "select": "headers,payload"}, headers=API, timeout=10
    )
    assert pulls.status_code == 200, pulls.text
    [listed] = pulls.json()["data"]
    assert listed["id"] == github["id"]
    assert listed["headers"]["x-github-delivery"] == delivery
    assert listed["payload"]["number"] == 7
    assert [
        e["action"] for e in httpx.get(f"{base}/v1/events", params={"action": "PUSH"}, headers=API).json()["data"]
    ] == ["PUSH"]
    no_headers = httpx.get(f"{base}/v1/events", params={"action": "PUSH"}, headers=API).json()["data"][0]
    assert "headers" not in no_headers
