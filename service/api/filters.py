"""Event filters shared by the list, the live stream and `hookyard replay`.

Each filter becomes SQL that an index serves (`action` exact, a pattern
whose first part is a name on `resource`, else one whose last part is a name
on `verb`, each indexed with `received_at, id`; `*:*` and the like scan), and
the same test in Python for the stream, which filters rows it already read
by `seq`. Bad values raise `Invalid` naming what was wrong: `400
ERR:MSG:VALIDATION:<WHAT>` from the API, exit 2 from the CLI.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, not_

from schemas.actions import is_pattern, pattern_matches
from schemas.errors import Invalid
from schemas.tables import EventRow, EventStatus


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
    """ISO 8601 (a date alone is midnight); a time without an offset is UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(what.upper(), f"{what}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_status(value: str) -> str:
    if value not in EventStatus.ALL:
        raise Invalid("STATUS", f"status must be one of {', '.join(EventStatus.ALL)}")
    return value


@dataclass(frozen=True)
class EventFilter:
    source: str | None = None
    action: str | None = None
    status: str | None = None
    since: datetime | None = None
    """Inclusive, on `received_at`."""
    until: datetime | None = None
    """Exclusive, on `received_at`."""

    @classmethod
    def parse(
        cls,
        *,
        source: str | None = None,
        action: str | None = None,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> EventFilter:
        return cls(
            source=source,
            action=None if action is None else parse_action(action),
            status=None if status is None else parse_status(status),
            since=None if since is None else parse_time(since, "since"),
            until=None if until is None else parse_time(until, "until"),
        )

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.source is not None:
            where.append(EventRow.source == self.source)
        if self.action is not None:
            where += action_clauses(self.action)
        if self.status is not None:
            where.append(EventRow.status == self.status)
        if self.since is not None:
            where.append(EventRow.received_at >= self.since)
        if self.until is not None:
            where.append(EventRow.received_at < self.until)
        return where

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

    def fingerprint(self, order: str) -> str:
        """A short hash of the query a cursor belongs to."""
        parts = [
            self.source or "",
            self.action or "",
            self.status or "",
            "" if self.since is None else self.since.isoformat(),
            "" if self.until is None else self.until.isoformat(),
            order,
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
