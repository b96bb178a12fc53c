"""Actions and action patterns: the names events are routed and filtered by.

GuestXM sends actions already in hookyard's form (`LOCATION:CREATED`, CONTRACT
section 4). Other vendors' event names are normalised (section 7): each
located part is split further at `.`, `/` and `:`, ASCII letters are
upper-cased, any other character outside `A-Z 0-9 _` becomes `_`, empty
pieces are dropped, and the parts are joined with `:`. So an action is one
or more parts of `A-Z 0-9 _` (`PUSH`, `PULL_REQUEST:OPENED`,
`CUSTOMER:SUBSCRIPTION:UPDATED`).

A pattern has the same shape, each part a name or `*` (exactly one part);
the lone `*` matches every action. Handlers (`workers.registry`), the
`/v1/events` filter and `hookyard replay` all use these definitions.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

MAX_ACTION_LENGTH = 128
NAME = r"[A-Z0-9_]+"
PATTERN = rf"^(\*|{NAME})(:(\*|{NAME}))*(?!\n)$"
"""Any action or pattern (`PUSH`, `PULL_REQUEST:*`, `*:*:UPDATED`, `*`), for the OpenAPI document too."""

HANDLER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
"""A handler's name (`@handler(name=...)`, a `[[forwards]]` block's `name`)."""

_PATTERN = re.compile(PATTERN)
_SPLIT = re.compile(r"[./:]")
_OUTSIDE = re.compile(r"[^A-Z0-9_]")
_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def normalize(values: Iterable[str]) -> str:
    """The hookyard action for a vendor's located parts; "" when nothing is left."""
    parts: list[str] = []
    for value in values:
        for piece in _SPLIT.split(value):
            if piece:
                parts.append(_OUTSIDE.sub("_", piece.translate(_UPPER)))
    return ":".join(parts)


def is_pattern(value: str) -> bool:
    """An action, or a pattern whose parts may be `*`: what handlers and filters accept."""
    return len(value) <= MAX_ACTION_LENGTH and _PATTERN.match(value) is not None


def pattern_matches(pattern: str, action: str) -> bool:
    """A `*` stands for exactly one part; the lone `*` matches everything."""
    if pattern == "*":
        return True
    wanted = pattern.split(":")
    parts = action.split(":")
    return len(wanted) == len(parts) and all(w in ("*", p) for w, p in zip(wanted, parts, strict=True))
