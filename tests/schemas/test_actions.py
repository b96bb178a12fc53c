"""Vendor event names become hookyard actions (CONTRACT section 7's normalisation), and what a pattern is."""

from __future__ import annotations

import pytest

from schemas.actions import is_pattern, normalize, pattern_matches


@pytest.mark.parametrize(
    ("parts", "action"),
    [
        (["payment_intent.succeeded"], "PAYMENT_INTENT:SUCCEEDED"),  # Stripe
        (["customer.subscription.updated"], "CUSTOMER:SUBSCRIPTION:UPDATED"),
        (["pull_request", "opened"], "PULL_REQUEST:OPENED"),  # GitHub: X-GitHub-Event + action
        (["push"], "PUSH"),  # GitHub's push has no `action`: the missing part is skipped
        (["check_suite", "requested"], "CHECK_SUITE:REQUESTED"),
        (["orders/create"], "ORDERS:CREATE"),  # Shopify's topic
        (["app/uninstalled"], "APP:UNINSTALLED"),
        (["event_callback", "app_mention"], "EVENT_CALLBACK:APP_MENTION"),  # Slack
        (["user.created"], "USER:CREATED"),  # Clerk, via Standard Webhooks
        (["invoice.payment_failed"], "INVOICE:PAYMENT_FAILED"),
        (["response.completed"], "RESPONSE:COMPLETED"),  # OpenAI
        (["email.delivery-delayed"], "EMAIL:DELIVERY_DELAYED"),  # Resend: `-` becomes `_`
        (["LOCATION:CREATED"], "LOCATION:CREATED"),  # already hookyard's form
        (["billing", "invoice.paid"], "BILLING:INVOICE:PAID"),  # a literal part first
        (["a..b/", "/c"], "A:B:C"),  # empty pieces are dropped
        (["café crème"], "CAF__CR_ME"),  # outside A-Z 0-9 _: `_`, one per character
        (["v2.1"], "V2:1"),
        (["", "..", "/"], ""),  # nothing left
        ([], ""),
    ],
)
def test_vendor_actions_normalise(parts: list[str], action: str) -> None:
    assert normalize(parts) == action
    if action:
        assert is_pattern(action)


@pytest.mark.parametrize(
    "value", ["PUSH", "PULL_REQUEST:*", "*", "*:*", "HOOKYARD:DELIVERY:*", "*:*:UPDATED", "A:*:C", "V2:1"]
)
def test_patterns(value: str) -> None:
    assert is_pattern(value)


@pytest.mark.parametrize("value", ["", "push", "A::B", "A:", ":A", "A-B", "**", "A:B*", "A B", "A:B\n", "A" * 129])
def test_not_patterns(value: str) -> None:
    assert not is_pattern(value)


def test_a_star_is_one_part_and_the_lone_star_is_everything() -> None:
    assert pattern_matches("PULL_REQUEST:*", "PULL_REQUEST:OPENED")
    assert not pattern_matches("PULL_REQUEST:*", "PULL_REQUEST")
    assert not pattern_matches("PUSH", "PUSH:X")
    assert pattern_matches("*", "PUSH")
    assert pattern_matches("*", "A:B:C:D")
