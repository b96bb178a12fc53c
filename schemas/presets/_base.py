"""What a preset is: the keys of a `[[sources]]` block that one vendor's webhooks need."""

from __future__ import annotations

import msgspec


class Preset(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """The `preset` value in a `[[sources]]` block."""
    scheme: str = ""
    """The signature scheme ("": the scheme of the preset's own name, as most vendors have)."""
    format: str = "json"
    action: tuple[str, ...] = ()
    event_id: str = ""
    """Locator of the vendor's event id ("" : the body fingerprint de-duplicates)."""
    sent_at: str = ""
    """Locator of the send time ("": the signed timestamp, else the time of receipt)."""
    env_name: str = ""
    """The environment variable the generated example config reads the secret from ("": `<NAME>_WEBHOOK_SECRET`)."""

    def __post_init__(self) -> None:
        """Fill the two keys most vendors derive from their name, so a preset module states only its own."""
        if not self.scheme:
            msgspec.structs.force_setattr(self, "scheme", self.name)
        if not self.env_name:
            msgspec.structs.force_setattr(self, "env_name", f"{self.name.upper().replace('-', '_')}_WEBHOOK_SECRET")
