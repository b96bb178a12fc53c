"""Query parameters the lists and the live stream share, and how they are checked.

Each bad value raises `Invalid` naming the parameter (`ERR:MSG:VALIDATION:SELECT`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter

from schemas.actions import MAX_ACTION_LENGTH, PATTERN
from schemas.api import EventStatusName
from schemas.errors import Invalid

SELECTABLE = ("payload", "deliveries", "headers")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

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
