"""Handler declarations: action patterns are checked when a handler is declared."""

from __future__ import annotations

import pytest

from workers.registry import HandlerError, Registry, check_pattern, pattern_matches


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("LOCATION:CREATED", "LOCATION:CREATED", True),
        ("LOCATION:CREATED", "LOCATION:DELETED", False),
        ("LOCATION:*", "LOCATION:CREATED", True),
        ("LOCATION:*", "BOOKING:CREATED", False),
        ("LOCATION:*", "LOCATION:CREATED:NOW", False),
        ("*:DELETED", "LOCATION:DELETED", True),
        ("*:DELETED", "LOCATION:CREATED", False),
        ("*:DELETED", "A:B:DELETED", False),
        ("*", "LOCATION:CREATED:NOW", True),
        ("*", "A:B", True),
        ("A:*:C", "A:B:C", True),
        ("PUSH", "PUSH", True),
        ("PUSH", "PUSH:NOW", False),
        ("PULL_REQUEST:*", "PULL_REQUEST", False),
        ("CUSTOMER:SUBSCRIPTION:UPDATED", "CUSTOMER:SUBSCRIPTION:UPDATED", True),
        ("HOOKYARD:DELIVERY:*", "HOOKYARD:DELIVERY:DEAD", True),
        ("HOOKYARD:DELIVERY:*", "HOOKYARD:DELIVERY", False),
        ("*:*:UPDATED", "CUSTOMER:SUBSCRIPTION:UPDATED", True),
        ("*:*:UPDATED", "SUBSCRIPTION:UPDATED", False),
        ("*:*", "A:B", True),
        ("*:*", "A", False),
    ],
)
def test_pattern_matrix(pattern: str, action: str, matches: bool) -> None:
    assert pattern_matches(check_pattern(pattern), action) is matches


@pytest.mark.parametrize("pattern", ["location:*", "LOCATION:", ":LOCATION", "A::B", "**", "LOCATION:**", "", "A-B"])
def test_bad_patterns_are_refused_at_declaration(pattern: str) -> None:
    with pytest.raises(HandlerError, match="bad action pattern"):
        Registry().handler(pattern)
