"""Vendor signature schemes: their published test vectors, several signatures and secrets, timestamp tolerance.

Every scheme signs with the same code it verifies with, so each test also
round-trips `sign()` through `verify()`; Standard Webhooks is cross-checked
against the reference implementation (`standardwebhooks` on PyPI).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from schemas.signatures import SCHEMES, SIGNATURE_HEADERS, scheme_for
from schemas.signatures.hmac_sha256 import HmacSha256
from schemas.signatures.shopify import Shopify
from schemas.signatures.slack import Slack
from schemas.signatures.standard_webhooks import StandardWebhooks
from schemas.signatures.stripe import Stripe

# Standard Webhooks' published vector (the spec and every reference library test it).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# GitHub's documented example ("Validating webhook deliveries", testing the signature).
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# Slack's documented example ("Verifying requests from Slack").
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

A_LONG_TIME = 10**10
"""A tolerance that lets an old published vector's timestamp pass."""


def lower(headers: dict[str, str]) -> dict[bytes, bytes]:
    return {name.lower().encode(): value.encode() for name, value in headers.items()}


def sw_headers(signature: str = SW_SIGNATURE, timestamp: int = SW_TIMESTAMP, msg_id: str = SW_ID) -> dict[bytes, bytes]:
    return lower({"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature})


def test_every_scheme_is_registered_with_its_signature_headers() -> None:
    assert set(SCHEMES) == {"gxm-sha256", "hmac-sha256", "standard-webhooks", "stripe", "shopify", "slack"}
    assert {
        "x-gxm-apisignature",
        "x-hub-signature-256",
        "x-hub-signature",
        "webhook-signature",
        "stripe-signature",
        "x-shopify-hmac-sha256",
        "x-slack-signature",
    } == SIGNATURE_HEADERS


# --- Standard Webhooks -------------------------------------------------------------------------


def test_standard_webhooks_published_vector() -> None:
    scheme = StandardWebhooks([SW_SECRET], tolerance_seconds=A_LONG_TIME)
    assert scheme.verify(sw_headers(), SW_BODY)
    assert scheme.signed_at(sw_headers()) == SW_TIMESTAMP
    signed = scheme.sign(SW_SECRET, SW_BODY, timestamp=SW_TIMESTAMP, message_id=SW_ID)
    assert signed == {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TIMESTAMP), "webhook-signature": SW_SIGNATURE}


def test_standard_webhooks_vector_is_refused_at_the_default_tolerance() -> None:
    assert not StandardWebhooks([SW_SECRET]).verify(sw_headers(), SW_BODY)


@pytest.mark.parametrize(
    "change",
    [
        {"body": SW_BODY + b" "},
        {"msg_id": "msg_other"},
        {"timestamp": SW_TIMESTAMP + 1},
        {"signature": "v1a," + SW_SIGNATURE[3:]},
        {"signature": ""},
        {"msg_id": ""},
    ],
)
def test_standard_webhooks_refuses_anything_changed(change: dict[str, object]) -> None:
    scheme = StandardWebhooks([SW_SECRET], tolerance_seconds=A_LONG_TIME)
    body = change.pop("body", SW_BODY)
    assert not scheme.verify(sw_headers(**change), body)  # type: ignore[arg-type]


def test_standard_webhooks_any_listed_signature_and_any_secret() -> None:
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    scheme = StandardWebhooks([other, SW_SECRET], tolerance_seconds=A_LONG_TIME)
    listed = f"v1,bm90IGl0 v1a,ignored {SW_SIGNATURE}"
    assert scheme.verify(sw_headers(signature=listed), SW_BODY)
    assert not StandardWebhooks([other], tolerance_seconds=A_LONG_TIME).verify(sw_headers(listed), SW_BODY)


def test_standard_webhooks_agrees_with_the_reference_library_both_ways() -> None:
    secret = "whsec_" + base64.b64encode(b"hookyard-cross-check-key-0123456").decode()
    ours = StandardWebhooks([secret])
    reference = Webhook(secret)
    body = b'{"type": "invoice.paid", "data": {"id": "in_1"}}'
    now = int(time.time())

    signed = ours.sign(secret, body, timestamp=now, message_id="msg_cross")
    reference.verify(body, signed)  # raises if it disagrees
    theirs = reference.sign("msg_cross", datetime.fromtimestamp(now, UTC), body.decode())
    assert theirs == signed["webhook-signature"]
    assert ours.verify(lower({**signed, "webhook-signature": theirs}), body)

    tampered = {**signed, "webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        reference.verify(body, tampered)
    assert not ours.verify(lower(tampered), body)

    # The reference library refuses a timestamp more than five minutes off either way; so do we.
    for offset in (-301, 301):
        stale = ours.sign(secret, body, timestamp=now + offset, message_id="msg_cross")
        with pytest.raises(WebhookVerificationError):
            reference.verify(body, stale)
        assert not ours.verify(lower(stale), body)


def test_standard_webhooks_secret_must_be_base64() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        StandardWebhooks(["whsec_not base64!"])
    # Unpadded base64, as the reference library accepts it.
    unpadded = "whsec_" + base64.b64encode(b"sixteen byte key").decode().rstrip("=") + "Zg"
    assert StandardWebhooks([unpadded])


# --- Stripe --------------------------------------------------------------------------------------


def stripe_header(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def test_stripe_signs_timestamp_dot_body_with_the_secret_as_configured() -> None:
    now = int(time.time())
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    scheme = Stripe(["whsec_test_secret"])
    assert scheme.sign("whsec_test_secret", body, timestamp=now) == {
        "Stripe-Signature": stripe_header("whsec_test_secret", body, now)
    }
    assert scheme.verify(lower({"Stripe-Signature": stripe_header("whsec_test_secret", body, now)}), body)
    assert scheme.signed_at(lower({"Stripe-Signature": f"t={now},v1=00"})) == now
    assert not scheme.verify(lower({"Stripe-Signature": stripe_header("whsec_test_secret", body, now)}), body + b"\n")


def test_stripe_several_v1_while_a_secret_rolls_and_several_active_secrets() -> None:
    now = int(time.time())
    body = b'{"id": "evt_2"}'
    new = stripe_header("whsec_new", body, now)
    old_sig = stripe_header("whsec_old", body, now).split("v1=")[1]
    both = f"{new},v1={old_sig},v0=ignored"
    assert Stripe(["whsec_old"]).verify(lower({"Stripe-Signature": both}), body)
    assert Stripe(["whsec_other", "whsec_new"]).verify(lower({"Stripe-Signature": new}), body)
    assert not Stripe(["whsec_other"]).verify(lower({"Stripe-Signature": both}), body)
    # v0 alone is never enough, and a header without `t` is refused.
    v0_only = f"t={now},v0={old_sig}"
    assert not Stripe(["whsec_old"]).verify(lower({"Stripe-Signature": v0_only}), body)
    assert not Stripe(["whsec_old"]).verify(lower({"Stripe-Signature": f"v1={old_sig}"}), body)


@pytest.mark.parametrize("offset", [-301, 301])
def test_stripe_tolerance_both_ways(offset: int) -> None:
    body = b"{}"
    stamp = int(time.time()) + offset
    header = lower({"Stripe-Signature": stripe_header("whsec_s", body, stamp)})
    assert not Stripe(["whsec_s"]).verify(header, body)
    assert Stripe(["whsec_s"], tolerance_seconds=400).verify(header, body)


# --- GitHub (hmac-sha256), Shopify, Slack ---------------------------------------------------------


def test_github_documented_example() -> None:
    scheme = HmacSha256([GITHUB_SECRET])
    assert scheme.verify(lower({"X-Hub-Signature-256": GITHUB_SIGNATURE}), GITHUB_BODY)
    assert scheme.sign(GITHUB_SECRET, GITHUB_BODY) == {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    assert not scheme.verify(lower({"X-Hub-Signature-256": GITHUB_SIGNATURE}), b"Hello, World")


def test_shopify_is_base64_of_the_body_hmac() -> None:
    body = b'{"id": 820982911946154508}'
    expected = base64.b64encode(hmac.new(b"shpss_secret", body, hashlib.sha256).digest()).decode()
    scheme = Shopify(["shpss_rotated", "shpss_secret"])
    assert scheme.sign("shpss_secret", body) == {"X-Shopify-Hmac-Sha256": expected}
    assert scheme.verify(lower({"X-Shopify-Hmac-Sha256": expected}), body)
    assert not scheme.verify(lower({"X-Shopify-Hmac-Sha256": expected.lower()}), body)  # base64 is case-sensitive
    assert not scheme.verify(lower({"X-Shopify-Hmac-Sha256": expected}), body + b" ")
    assert not scheme.timestamped


def test_slack_documented_example() -> None:
    headers = lower({"X-Slack-Signature": SLACK_SIGNATURE, "X-Slack-Request-Timestamp": str(SLACK_TIMESTAMP)})
    assert Slack([SLACK_SECRET], tolerance_seconds=A_LONG_TIME).verify(headers, SLACK_BODY)
    assert not Slack([SLACK_SECRET]).verify(headers, SLACK_BODY)  # five years late
    assert Slack([SLACK_SECRET]).sign(SLACK_SECRET, SLACK_BODY, timestamp=SLACK_TIMESTAMP) == {
        "X-Slack-Request-Timestamp": str(SLACK_TIMESTAMP),
        "X-Slack-Signature": SLACK_SIGNATURE,
    }


@pytest.mark.parametrize("offset", [-301, 301])
def test_slack_tolerance_both_ways(offset: int) -> None:
    scheme = Slack(["s"])
    signed = scheme.sign("s", b"{}", timestamp=int(time.time()) + offset)
    assert not scheme.verify(lower(signed), b"{}")
    assert Slack(["s"], tolerance_seconds=302).verify(lower(signed), b"{}")


def test_slack_handshake_only_for_url_verification() -> None:
    scheme = Slack(["s"])
    assert scheme.handshake({"type": "url_verification", "challenge": "c-123"}) == "c-123"
    assert scheme.handshake({"type": "event_callback", "challenge": "c-123"}) is None
    assert scheme.handshake({"type": "url_verification", "challenge": 5}) is None
    assert scheme_for("stripe", ["s"]).handshake({"type": "url_verification", "challenge": "c"}) is None


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_every_scheme_verifies_what_it_signs_with_any_active_secret(name: str) -> None:
    secrets = ["whsec_" + base64.b64encode(f"key number {n} of the rotation".encode()).decode() for n in (1, 2)]
    scheme = scheme_for(name, secrets)
    body = b'{"hello": "world"}'
    for secret in secrets:
        signed = lower(scheme.sign(secret, body))
        assert scheme.verify(signed, body)
        if scheme.needs_body:
            assert not scheme.verify(signed, body + b" ")
    assert not scheme.verify({}, body)
    assert not scheme_for(name, [secrets[0] + "x" if name != "standard-webhooks" else secrets[1]]).verify(
        lower(scheme.sign(secrets[0], body)), body
    )
