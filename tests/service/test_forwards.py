"""Forwards and hookyard's own events through real processes: `hookyard serve`, `hookyard worker`, and a
real HTTP receiver on 127.0.0.1 that checks signatures with the official `standardwebhooks` package."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from service.embedded_redis import free_port
from tests.conftest import ADMIN_KEY, Config, ConfigFactory, Process, gxm_headers, rows, wait_for
from tests.receiver import Received, receiver

pytestmark = pytest.mark.process

SECRET = "whsec_" + base64.b64encode(b"forward-secret-0123456789abcdef").decode()
LOCAL = ["127.0.0.1"]


def envelope(action: str, note: str) -> bytes:
    """A GuestXM body with spacing and key order a re-encoding would change: forwarded byte for byte."""
    data = f'{{"action": "{action}", "sent_at": 1700000000, "payload": {{"z": 1, "a": "{note}"}}}}'
    return ('{"data":  ' + data + ', "meta": {}}').encode()


def post(base: str, body: bytes, content_type: str = "application/json; charset=utf-8") -> str:
    response = httpx.post(
        f"{base}/webhooks/gxm", content=body, headers=gxm_headers(content_type=content_type), timeout=5
    )
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def delivery(config: Config, event_id: str, handler: str) -> Any:
    found = rows(
        config,
        "select status, attempts, last_error from deliveries where event_id = :e and handler = :h",
        e=event_id,
        h=handler,
    )
    return found[0] if found else None


def settled(config: Config, event_id: str, handler: str) -> Any:
    row = delivery(config, event_id, handler)
    return row if row is not None and row.status in ("succeeded", "dead") else None


def verified(request: Received) -> dict[str, Any]:
    """What a receiver using the official Standard Webhooks library gets (raises if the signature is bad)."""
    return Webhook(SECRET).verify(request.body, request.headers)  # type: ignore[no-any-return]


def test_a_forward_posts_the_exact_body_signed_and_retries_honour_the_contract(
    make_config: ConfigFactory, spawn: Callable[..., Process], server_for: Callable[[Config], str]
) -> None:
    with receiver() as hooks:
        hooks.answers = {
            "/retried": [(500, {})],
            "/gone": [(410, {})],
            "/later": [(429, {"Retry-After": "3"})],
            "/moved": [(302, {"Location": hooks.url("/elsewhere")})],
            "/slow": [(200, {"delay": "4"})],
        }
        closed = free_port()  # nothing listens there: connections are refused
        forward = {"secret": SECRET, "allow_hosts": LOCAL}
        config = make_config(
            handlers={"retry_max_seconds": 10},
            forwards=[
                {**forward, "name": "retried", "actions": ["INVOICE:RETRIED"], "url": hooks.url("/retried")},
                {**forward, "name": "gone", "actions": ["INVOICE:GONE"], "url": hooks.url("/gone")},
                {**forward, "name": "later", "actions": ["INVOICE:LATER"], "url": hooks.url("/later")},
                {
                    **forward,
                    "name": "moved",
                    "actions": ["INVOICE:MOVED"],
                    "url": hooks.url("/moved"),
                    "max_attempts": 1,
                },
                {
                    **forward,
                    "name": "slow",
                    "actions": ["INVOICE:SLOW"],
                    "url": hooks.url("/slow"),
                    "timeout_seconds": 1,
                },
                {
                    **forward,
                    "name": "refused",
                    "actions": ["INVOICE:REFUSED"],
                    "url": f"http://127.0.0.1:{closed}/hooks",
                    "max_attempts": 2,
                },
                {"name": "blocked", "actions": ["INVOICE:BLOCKED"], "url": hooks.url("/blocked"), "secret": SECRET},
            ],
        )
        base = server_for(config)
        spawn(["worker"], config.env(), name="worker")
        listed = httpx.get(f"{base}/v1/handlers", headers={"X-API-Key": ADMIN_KEY}, timeout=5).json()["data"]
        assert {"retried", "gone", "later", "moved", "blocked"} <= {h["name"] for h in listed}

        sent = {
            name: envelope(f"INVOICE:{name.upper()}", name)
            for name in ("retried", "gone", "later", "moved", "slow", "refused", "blocked")
        }
        ids = {name: post(base, body) for name, body in sent.items()}
        final = {name: wait_for(lambda n=name: settled(config, ids[n], n), timeout=40, what=name) for name in ids}

        # 500 then 200: retried, succeeded; the receiver verified both attempts with the official library.
        assert (final["retried"].status, final["retried"].attempts) == ("succeeded", 2)
        attempts = hooks.to("/retried")
        assert len(attempts) == 2
        for request in attempts:
            assert request.body == sent["retried"]
            assert request.headers["content-type"] == "application/json; charset=utf-8"
            assert verified(request) == json.loads(sent["retried"])
            assert request.headers["webhook-id"] == f"{ids['retried']}:retried"
            assert request.headers["host"] == f"127.0.0.1:{hooks.port}"

        # 410: dead at once.
        assert (final["gone"].status, final["gone"].attempts) == ("dead", 1)
        assert final["gone"].last_error.startswith("HTTP 410")
        assert len(hooks.to("/gone")) == 1

        # 429 with Retry-After: 3 waited about that long (the backoff alone would be well under 2 s).
        assert (final["later"].status, final["later"].attempts) == ("succeeded", 2)
        first, second = hooks.to("/later")
        assert second.at - first.at >= 2.5

        # A redirect is not followed.
        assert final["moved"].status == "dead"
        assert "not followed" in final["moved"].last_error
        assert len(hooks.to("/moved")) == 1
        assert hooks.to("/elsewhere") == []

        # A time-out and a refused connection are retried.
        assert (final["slow"].status, final["slow"].attempts) == ("succeeded", 2)
        assert len(hooks.to("/slow")) == 2
        assert (final["refused"].status, final["refused"].attempts) == ("dead", 2)
        assert final["refused"].last_error.startswith(f"cannot POST http://127.0.0.1:{closed}/hooks (127.0.0.1): ")

        # 127.0.0.1 without allow_hosts: dead at once, nothing sent.
        assert (final["blocked"].status, final["blocked"].attempts) == ("dead", 1)
        assert final["blocked"].last_error.startswith("blocked address 127.0.0.1 (loopback)")
        assert hooks.to("/blocked") == []


def test_a_dead_delivery_emits_hookyards_own_event_once(
    make_config: ConfigFactory, spawn: Callable[..., Process], server_for: Callable[[Config], str]
) -> None:
    with receiver() as hooks:
        hooks.answers = {"/pager": [(410, {})] * 5}
        config = make_config(
            handler_modules=["tests.plugins.failing"],
            forwards=[
                {
                    "name": "pager",
                    "actions": ["HOOKYARD:DELIVERY:DEAD"],
                    "url": hooks.url("/pager"),
                    "secret": SECRET,
                    "allow_hosts": LOCAL,
                }
            ],
        )
        base = server_for(config)
        spawn(["worker"], config.env(), name="worker")
        event_id = post(base, envelope("INVOICE:FAILING", "x"))
        wait_for(lambda: settled(config, event_id, "always-fails"), timeout=30, what="the failing delivery")

        alerts = wait_for(lambda: hooks.to("/pager"), timeout=30, what="the pager to be called")
        alert = verified(alerts[0])
        assert alert["event_id"] == event_id
        assert alert["handler"] == "always-fails"
        assert alert["attempts"] == 1
        assert alert["last_error"].startswith("RuntimeError: cannot handle")

        reader = {"X-API-Key": ADMIN_KEY}
        listed = httpx.get(f"{base}/v1/events", params={"source": "hookyard"}, headers=reader, timeout=5).json()
        assert [(e["source"], e["action"]) for e in listed["data"]] == [("hookyard", "HOOKYARD:DELIVERY:DEAD")]
        own_id = listed["data"][0]["id"]
        # The pager answered 410: that delivery of the own event is dead too, and emits nothing more.
        assert wait_for(lambda: settled(config, own_id, "pager"), timeout=30).status == "dead"
        assert rows(config, "select count(*) from events where source = 'hookyard'")[0][0] == 1
        stats = httpx.get(f"{base}/v1/stats", headers=reader, timeout=5).json()["data"]
        assert stats["events"]["by_action"]["HOOKYARD:DELIVERY:DEAD"] == 1
        assert stats["events"]["total"] == 2  # the failing event and hookyard's own

        # Nobody outside can post into the hookyard source.
        outside = httpx.post(
            f"{base}/webhooks/hookyard",
            content=envelope("HOOKYARD:DELIVERY:DEAD", "x"),
            headers=gxm_headers(),
            timeout=5,
        )
        assert outside.status_code == 404


def test_a_forward_named_like_a_handler_stops_the_worker_in_one_line(make_config: ConfigFactory) -> None:
    config = make_config(
        handler_modules=["tests.plugins.failing"],
        forwards=[{"name": "always-fails", "actions": ["INVOICE:*"], "url": "https://x.example/", "secret": SECRET}],
    )
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "worker", "--burst"],
        env=config.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "hookyard worker: [[forwards]] 'always-fails': the name is taken by a handler in tests.plugins.failing\n"
    )
