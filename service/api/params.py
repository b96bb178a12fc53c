"""Query parameters the lists and the live stream share, and how they are checked.

Each bad value raises `Invalid` naming the parameter (`ERR:MSG:VALIDATION:SELECT`).
`Paging` and the filters are Litestar dependencies (`LISTS`): a route that takes
`paging` or `where` gets them checked, each parameter declared and documented once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from litestar import get
from litestar.di import Provide
from litestar.params import Dependency, Parameter

from schemas.actions import MAX_ACTION_LENGTH, PATTERN
from schemas.api import DeliveryStatusName, EventStatusName, PageMeta
from schemas.errors import Invalid
from service.api.cursors import encode_cursor
from service.api.docs import error_responses
from service.api.filters import DeliveryFilter, EventFilter, RejectionFilter

SELECTABLE = ("payload", "deliveries", "headers")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
Position = TypeVar("Position")

LimitParam = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="Page size, 1-1000")]
CursorParam = Annotated[str | None, Parameter(description="`meta.next_cursor` of the previous page")]
OrderParam = Annotated[Literal["desc", "asc"], Parameter(description="`asc`: oldest first")]

SourceParam = Annotated[str | None, Parameter(description="Only events from this source (unknown: empty page)")]
ActionParam = Annotated[
    str | None,
    Parameter(
        description="An action or a pattern: parts of `A-Z0-9_` or `*` (exactly one part) joined with `:`"
        " (`PUSH`, `PULL_REQUEST:*`, `*:*:UPDATED`); the lone `*` is every action",
        pattern=PATTERN,
        max_length=MAX_ACTION_LENGTH,
    ),
]
StatusParam = Annotated[EventStatusName | None, Parameter(description="Only events in this status")]
SinceParam = Annotated[str | None, Parameter(description="ISO 8601; events received at or after it")]
UntilParam = Annotated[str | None, Parameter(description="ISO 8601; events received before it")]
SelectParam = Annotated[
    str | None,
    Parameter(
        query="select",
        description="Comma-separated extras: `payload`, `deliveries`, `headers` (a leading `-` excludes one)",
    ),
]


def parse_select(value: str | None) -> set[str]:
    chosen: set[str] = set()
    for item in (value or "").split(","):
        name = item.strip()
        if not name:
            continue
        bare = name.removeprefix("-")
        if bare not in SELECTABLE:
            raise Invalid("SELECT", f"select: {bare!r} is not one of {', '.join(SELECTABLE)}")
        if name.startswith("-"):
            chosen.discard(bare)
        else:
            chosen.add(bare)
    return chosen


class Filter(Protocol):
    def fingerprint(self, order: str) -> str: ...


@dataclass(frozen=True)
class Paging:
    """Where a keyset list's page starts and how long it is, for the list `where` chose."""

    limit: int
    cursor: str | None
    """`meta.next_cursor` of the previous page; None for the first."""
    order: Literal["desc", "asc"]
    query: str
    """The hash of the list's filters and order, which its cursors carry."""

    def after(self, decode: Callable[[str, str, str], Position]) -> Position | None:
        """The cursor's position, or None for the first page."""
        return None if self.cursor is None else decode(self.cursor, self.order, self.query)

    def meta(self, last: tuple[datetime, str | int] | None) -> PageMeta:
        """`last`: the (time, id) the next page starts after; None when this page is the last."""
        next_cursor = None if last is None else encode_cursor(*last, self.order, self.query)
        return PageMeta(next_cursor=next_cursor, limit=self.limit)


def paging(
    where: Annotated[Filter, Dependency(skip_validation=True)],
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    order: OrderParam = "desc",
) -> Paging:
    """Resolved after `where` (whose hash its cursors carry), so a request with several bad parameters
    names the same one in every process (dependencies of one batch run in no fixed order)."""
    return Paging(limit, cursor, order, where.fingerprint(order))


def event_filter(
    source: SourceParam = None,
    action: ActionParam = None,
    status: StatusParam = None,
    since: SinceParam = None,
    until: UntilParam = None,
) -> EventFilter:
    return EventFilter.parse(source=source, action=action, status=status, since=since, until=until)


def delivery_filter(
    handler: Annotated[str | None, Parameter(description="Only this handler's deliveries")] = None,
    status: Annotated[DeliveryStatusName | None, Parameter(description="Only deliveries in this status")] = None,
    source: SourceParam = None,
    action: ActionParam = None,
    since: Annotated[str | None, Parameter(description="ISO 8601; updated at or after it")] = None,
    until: Annotated[str | None, Parameter(description="ISO 8601; updated before it")] = None,
) -> DeliveryFilter:
    return DeliveryFilter.parse(handler=handler, status=status, source=source, action=action, since=since, until=until)


def rejection_filter(
    source: Annotated[str | None, Parameter(description="Only requests to this source name")] = None,
    code: Annotated[str | None, Parameter(description="Only this `meta.code` (`ERR:MSG:SIGNATURE`)")] = None,
    since: Annotated[str | None, Parameter(description="ISO 8601; received at or after it")] = None,
    until: Annotated[str | None, Parameter(description="ISO 8601; received before it")] = None,
) -> RejectionFilter:
    return RejectionFilter.parse(source=source, code=code, since=since, until=until)


PAGING = Provide(paging, sync_to_thread=False)
EVENTS = Provide(event_filter, sync_to_thread=False)
DELIVERIES = Provide(delivery_filter, sync_to_thread=False)
REJECTIONS = Provide(rejection_filter, sync_to_thread=False)


def keyset_list(path: str, where: Provide, **documented: Any) -> get:
    """The `GET` of a list in keyset pages: its filters (`where`) and `paging` come checked, a bad one is 400;
    it runs in a worker thread, so a slow query never holds the event loop that ingest shares."""
    return get(
        path,
        sync_to_thread=True,
        responses=error_responses(400),
        dependencies={"where": where, "paging": PAGING},
        **documented,
    )
