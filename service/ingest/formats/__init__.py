"""Body formats: how a source's body becomes an event, one module per format.

Each module defines one class behind `Format` and names it `FORMAT`;
`FORMATS` is built from the modules, so adding a format is adding a module.
`gxm` is GuestXM's envelope (CONTRACT section 4); `json` takes any JSON
object as the payload and finds the action, id and time with locators
(section 7).
"""

from __future__ import annotations

from schemas.modules import collect
from schemas.settings import ConfigError, SourceSettings
from service.ingest.formats._base import Format, Located

__all__ = ["FORMATS", "Format", "Located", "format_for"]


def _collect() -> dict[str, type[Format]]:
    return {kind.name: kind for kind in collect(__path__, __name__, "FORMAT")}


FORMATS = _collect()
"""Format name -> class, one per module of this package."""


def format_for(source: SourceSettings, key: str) -> Format:
    """The source's format; `ConfigError` naming `key.format` (or the setting it cannot use)."""
    kind = FORMATS.get(source.format)
    if kind is None:
        raise ConfigError(f"{key}.format: unknown format {source.format!r} (known: {', '.join(FORMATS)})")
    return kind(source, key)
