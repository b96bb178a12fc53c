"""`gxm`: GuestXM's `{"data": {"sent_at", "action", "payload"}}` envelope, checked as CONTRACT section 4 says.

The action and the send time are `data.action` and `data.sent_at`, so the
`action` and `sent_at` locators do not apply; an `event_id` locator does
(then that id, not the fingerprint of `data`, decides what is a duplicate).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import msgspec

from schemas.errors import Invalid
from schemas.settings import ConfigError, SourceSettings
from schemas.wire import CheckedData
from service.ingest.duplicate_keys import repeated_key
from service.ingest.formats._base import Headers, Located, locator, read_event_id

_PATH_PART = re.compile(r"`\$\.(\w+)")  # paths are relative to `data`, which is what is converted
_MISSING = re.compile(r"missing required field `(\w+)`")


class Gxm:
    name: ClassVar[str] = "gxm"

    def __init__(self, source: SourceSettings, key: str) -> None:
        for setting, value in (("action", source.action), ("sent_at", source.sent_at)):
            if value:
                raise ConfigError(f"{key}.{setting}: format gxm reads it from `data`; remove it or use format json")
        self.event_id = locator(source.event_id)

    def read(self, document: dict[str, Any], body: bytes, headers: Headers) -> Located:
        repeated = repeated_key(body)
        if repeated is not None:
            raise Invalid("DUPLICATE_KEY", f"key `{repeated}` appears more than once")
        data = document.get("data")
        if not isinstance(data, dict):
            raise Invalid("DATA", "`data` must be an object")
        try:
            checked = msgspec.convert(data, CheckedData)
        except msgspec.ValidationError as exc:
            raise _validation_reject(str(exc)) from None
        return Located(
            action=checked.action,
            sent_at=checked.sent_at,
            vendor_event_id=read_event_id(self.event_id, document, headers),
            identity=data,
            whole_body=False,
        )


def _validation_reject(message: str) -> Invalid:
    missing = _MISSING.search(message)
    located = _PATH_PART.search(message)
    what = (missing or located).group(1) if (missing or located) else "DATA"  # type: ignore[union-attr]
    detail = message.replace("`$.", "`data.").replace("`$`", "`data`")
    return Invalid(what.upper(), detail)


FORMAT = Gxm
