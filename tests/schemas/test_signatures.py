"""Signature schemes: GuestXM's static header, and HMAC over the body checked after a bounded read.

The vendor schemes (Standard Webhooks, Stripe, Shopify, Slack) are in `test_vendor_signatures.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from collections.abc import Callable

import httpx

from schemas.signatures import scheme_for
from schemas.signatures.gxm_sha256 import GxmSha256
from schemas.signatures.hmac_sha256 import HmacSha256
from tests.conftest import ConfigFactory, gxm_body

BODY = b'{"data": {"sent_at": 1, "action": "REPO:PUSHED", "payload": {}}}'


def _hub(secret: str, body: bytes) -> bytes:
    return b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


def test_hmac_accepts_every_active_secret_and_only_the_signed_body() -> None:
    scheme = HmacSha256(["old", "new"])
    assert scheme.verify({b"x-hub-signature-256": _hub("old", BODY)}, BODY)
    assert scheme.verify({b"x-hub-signature-256": _hub("new", BODY).upper().replace(b"SHA256=", b"sha256=")}, BODY)
    assert not scheme.verify({b"x-hub-signature-256": _hub("new", BODY)}, BODY + b" ")
    assert not scheme.verify({b"x-hub-signature-256": _hub("other", BODY)}, BODY)
    assert not scheme.verify({}, BODY)
    assert scheme.sign("new", BODY) == {"X-Hub-Signature-256": _hub("new", BODY).decode()}


def test_gxm_signature_is_the_secret_digest() -> None:
    scheme = scheme_for("gxm-sha256", ["s3cret"])
    assert isinstance(scheme, GxmSha256)
    assert scheme.sign("s3cret") == {"X-GXM-APISIGNATURE": hashlib.sha256(b"s3cret").hexdigest()}
    assert not scheme.needs_body


def test_an_hmac_source_end_to_end(make_config: ConfigFactory, server_for: Callable[..., str]) -> None:
    config = make_config(sources=[{"name": "hub", "scheme": "hmac-sha256", "secrets": ["hub-secret"]}])
    base = server_for(config)
    body = gxm_body("REPO:PUSHED")
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": _hub("hub-secret", body).decode()}
    good = httpx.post(f"{base}/webhooks/hub", content=body, headers=headers, timeout=10)
    assert good.status_code == 202, good.text
    tampered = httpx.post(f"{base}/webhooks/hub", content=body.replace(b"REPO", b"USER"), headers=headers, timeout=10)
    assert tampered.status_code == 401
    assert tampered.json()["meta"]["code"] == "ERR:MSG:SIGNATURE"

    sent = subprocess.run(
        [sys.executable, "-m", "service.cli", "send", "--source", "hub", "--action", "REPO:PUSHED"],
        env=config.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.startswith("202 ")
