"""What a preset is: the keys of a `[[sources]]` block that one vendor's webhooks need."""

from __future__ import annotations

import msgspec


class Preset(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """The `preset` value in a `[[sources]]` block."""
    scheme: str
    format: str
    action: tuple[str, ...] = ()
    event_id: str = ""
    """Locator of the vendor's event id ("" : the body fingerprint de-duplicates)."""
    sent_at: str = ""
    """Locator of the send time ("": the signed timestamp, else the time of receipt)."""
    env_name: str = ""
    """The environment variable the generated example config reads the secret from."""
