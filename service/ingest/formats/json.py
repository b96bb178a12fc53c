"""`json`: the whole body (a JSON object) is the payload; locators find the action, id and time.

The action is the located parts normalised (`schemas.actions.normalize`); a
part that is missing (or JSON null) is skipped, one that is not a string is
a 400, and so is an action that normalises to nothing or past 128
characters. Repeated keys are not refused here, unlike `gxm`: the body is
the vendor's own signed document, kept byte for byte, and hookyard reads it
last-wins as the vendors' own libraries do.
"""

from __future__ import annotations

from typing import Any, ClassVar

from schemas.actions import MAX_ACTION_LENGTH, normalize
from schemas.errors import Invalid
from schemas.locators import MISSING, parse_locator
from schemas.settings import ConfigError, SourceSettings
from service.ingest.formats._base import Headers, Located, locator, read_event_id, read_sent_at


class Json:
    name: ClassVar[str] = "json"

    def __init__(self, source: SourceSettings, key: str) -> None:
        if not source.action:
            raise ConfigError(f'{key}.action: format json needs at least one locator (e.g. "json:/type")')
        self.action = tuple(parse_locator(text) for text in source.action)
        self.event_id = locator(source.event_id)
        self.sent_at = locator(source.sent_at)

    def read(self, document: dict[str, Any], body: bytes, headers: Headers) -> Located:
        parts: list[str] = []
        for where in self.action:
            value = where.find(document, headers)
            if value is MISSING or value is None:
                continue
            if not isinstance(value, str):
                raise Invalid("ACTION", f"the action part at {where.text} must be a string")
            parts.append(value)
        action = normalize(parts)
        if not action:
            located = ", ".join(where.text for where in self.action)
            raise Invalid("ACTION", f"no action: nothing usable at {located}")
        if len(action) > MAX_ACTION_LENGTH:
            raise Invalid("ACTION", f"the action is over {MAX_ACTION_LENGTH} characters")
        return Located(
            action=action,
            sent_at=read_sent_at(self.sent_at, document, headers),
            vendor_event_id=read_event_id(self.event_id, document, headers),
            identity=document,
            whole_body=True,
        )


FORMAT = Json
