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


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"payload": dict}, "payload= must be a msgspec.Struct class"),
        ({"payload": "LocationCreated"}, "payload= must be a msgspec.Struct class"),
        ({"skip_stale": True}, "skip_stale needs an ordering_key"),
        ({"ordering_key": "location_id"}, "ordering_key must be a function"),
    ],
)
def test_bad_handler_options_are_refused_when_declared(options: dict[str, object], message: str) -> None:
    with pytest.raises(HandlerError, match=message):
        Registry().handler("LOCATION:*", name="h", **options)  # type: ignore[arg-type]


def test_an_ordering_key_is_a_string_an_integer_s_digits_or_none() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    from workers.event import Event  # noqa: PLC0415

    registry = Registry()
    for name, key in (("text", lambda e: e.payload["k"]), ("none", lambda _e: None), ("bad", lambda _e: 1.5)):
        registry.handler("A:B", name=name, ordering_key=key)(lambda _e: None)
    now = datetime.now(UTC)
    event = Event(id="e", source="s", action="A:B", sent_at=now, received_at=now, payload={"k": 42}, attempt=1)
    assert registry.get("text").key_of(event) == "42"  # type: ignore[union-attr]
    assert registry.get("none").key_of(event) is None  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="ordering_key returned float, not a string"):
        registry.get("bad").key_of(event)  # type: ignore[union-attr]
    long = Event(id="e", source="s", action="A:B", sent_at=now, received_at=now, payload={"k": "x" * 300}, attempt=1)
    assert registry.get("text").key_of(long).startswith("sha256:")  # type: ignore[union-attr]
