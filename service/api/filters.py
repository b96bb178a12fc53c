"""Filters shared by the lists, the live stream, replays and the console.

`EventFilter` (events: the list, the stream, the event side of a replay):
each filter becomes SQL that an index serves (`action` exact, a pattern
whose first part is a name on `resource`, else one whose last part is a name
on `verb`, each indexed with `received_at, id`; `*:*` and the like scan), and
the same test in Python for the stream, which filters rows it already read
by `seq`. `DeliveryFilter` (`/v1/deliveries`, dead letters) filters
deliveries on `updated_at` and their event's source and action, the latter
meaning exactly what they mean for events. `RejectionFilter` is the ledger's.
Bad values raise `Invalid` naming what was wrong: `400
ERR:MSG:VALIDATION:<WHAT>` from the API and the console, exit 2 from the CLI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from sqlalchemy import ColumnElement, not_
from sqlalchemy.orm import InstrumentedAttribute

from schemas.actions import is_pattern, pattern_matches
from schemas.errors import Invalid
from schemas.tables import DeliveryRow, DeliveryStatus, EventRow, EventStatus, RejectionRow


def parse_action(value: str) -> str:
    if not is_pattern(value):
        raise Invalid("ACTION", f"action {value!r} is not an action or a pattern like PULL_REQUEST:* or *:UPDATED")
    return value


def action_clauses(pattern: str) -> list[ColumnElement[bool]]:
    """SQL for one action pattern: an index column first, then the exact shape (LIKE and a part count)."""
    if pattern == "*":
        return []
    parts = pattern.split(":")
    if "*" not in parts:
        return [EventRow.action == pattern]
    shape = ":".join("%" if part == "*" else part.replace("_", "\\_") for part in parts)
    where: list[ColumnElement[bool]] = [
        EventRow.action.like(shape, escape="\\"),
        not_(EventRow.action.like(":".join(["%"] * (len(parts) + 1)))),  # no more parts than the pattern
    ]
    if parts[0] != "*":
        where.insert(0, EventRow.resource == parts[0])
    elif parts[-1] != "*":
        where.insert(0, EventRow.verb == parts[-1])
    return where


def parse_time(value: str, what: str) -> datetime:
    """ISO 8601 (a date alone is midnight); a time without an offset is UTC. A time whose UTC equivalent
    falls outside years 1 to 9999 is a 400 naming the parameter (not clamped: such a filter is a mistake)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(what.upper(), f"{what}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC, 9999-12-31T23:00-01:00 in 10000
        raise Invalid(
            what.upper(), f"{what}: {value!r} is out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)"
        ) from None


def parse_text(value: str, what: str) -> str:
    """A name to match exactly (source, handler, code): any text but NUL, which no name holds and PostgreSQL
    refuses in a query, so it is a 400 naming the filter rather than a 500."""
    if "\x00" in value:
        raise Invalid(what.upper(), f"{what}: must not contain NUL characters")
    return value


def parse_status(value: str, allowed: tuple[str, ...] = EventStatus.ALL, what: str = "status") -> str:
    if value not in allowed:
        raise Invalid(what.upper(), f"{what} must be one of {', '.join(allowed)}")
    return value


def query_hash(*parts: str) -> str:
    """A short hash of a list's name, filters and order, which a cursor carries."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


@dataclass(frozen=True)
class Rule:
    """One filter of a list: how its query value is checked, the SQL it adds, its part of the cursor's hash."""

    name: str
    parse: Callable[[str], Any]
    clauses: Callable[[Any], list[ColumnElement[bool]]]
    text: Callable[[Any], str] = str


def text_rule(name: str, column: InstrumentedAttribute[str]) -> Rule:
    return Rule(name, lambda value: parse_text(value, name), lambda value: [column == value])


def status_rule(column: InstrumentedAttribute[str], allowed: tuple[str, ...]) -> Rule:
    return Rule("status", lambda value: parse_status(value, allowed), lambda value: [column == value])


def time_rules(column: InstrumentedAttribute[datetime]) -> tuple[Rule, Rule]:
    """`since` (inclusive) and `until` (exclusive) on `column`."""
    return (
        Rule("since", lambda value: parse_time(value, "since"), lambda value: [column >= value], _iso),
        Rule("until", lambda value: parse_time(value, "until"), lambda value: [column < value], _iso),
    )


ACTION = Rule("action", parse_action, action_clauses)
"""The event's action or an action pattern, on `events` (joined for deliveries)."""


class Filters:
    """What the filter dataclasses share: built from their `RULES`, in that order."""

    RULES: ClassVar[tuple[Rule, ...]]
    LIST: ClassVar[tuple[str, ...]] = ()
    """The list's name, first in the cursor's hash (none for events)."""

    @classmethod
    def parse(cls, **given: str | None) -> Self:
        """Each value given checked (`Invalid` naming the first bad one), None for those not given."""
        unknown = given.keys() - {rule.name for rule in cls.RULES}
        if unknown:
            raise TypeError(f"{cls.__name__} has no filter {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for rule in cls.RULES:
            value = given.get(rule.name)
            values[rule.name] = None if value is None else rule.parse(value)
        return cls(**values)

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        for rule in self.RULES:
            value = getattr(self, rule.name)
            if value is not None:
                where += rule.clauses(value)
        return where

    def fingerprint(self, order: str) -> str:
        """A short hash of the query a cursor belongs to."""
        parts = ("" if (value := getattr(self, rule.name)) is None else rule.text(value) for rule in self.RULES)
        return query_hash(*self.LIST, *parts, order)


@dataclass(frozen=True)
class EventFilter(Filters):
    RULES = (
        text_rule("source", EventRow.source),
        ACTION,
        status_rule(EventRow.status, EventStatus.ALL),
        *time_rules(EventRow.received_at),
    )

    source: str | None = None
    action: str | None = None
    status: str | None = None
    since: datetime | None = None
    """Inclusive, on `received_at`."""
    until: datetime | None = None
    """Exclusive, on `received_at`."""

    def matches(self, source: str, action: str, status: str, received_at: datetime) -> bool:
        """The same test as `clauses()`, for rows already in hand."""
        if self.source is not None and source != self.source:
            return False
        if self.action is not None and not pattern_matches(self.action, action):
            return False
        if self.status is not None and status != self.status:
            return False
        if self.since is not None and received_at < self.since:
            return False
        return self.until is None or received_at < self.until


@dataclass(frozen=True)
class DeliveryFilter(Filters):
    """`GET /v1/deliveries`: newest `updated_at` first; `source` and `action` are the event's."""

    RULES = (
        text_rule("handler", DeliveryRow.handler),
        status_rule(DeliveryRow.status, DeliveryStatus.ALL),
        text_rule("source", EventRow.source),
        ACTION,
        *time_rules(DeliveryRow.updated_at),
    )
    LIST = ("deliveries",)

    handler: str | None = None
    status: str | None = None
    """A delivery status."""
    source: str | None = None
    action: str | None = None
    since: datetime | None = None
    """Inclusive, on `updated_at`."""
    until: datetime | None = None
    """Exclusive, on `updated_at`."""


@dataclass(frozen=True)
class RejectionFilter(Filters):
    """`GET /v1/rejections`: newest first by `received_at`."""

    RULES = (
        text_rule("source", RejectionRow.source),
        text_rule("code", RejectionRow.code),
        *time_rules(RejectionRow.received_at),
    )
    LIST = ("rejections",)

    source: str | None = None
    code: str | None = None
    since: datetime | None = None
    until: datetime | None = None
