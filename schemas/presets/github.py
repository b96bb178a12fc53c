"""`github`: `X-GitHub-Event` plus the body's `action` (`pull_request` + `opened` -> `PULL_REQUEST:OPENED`)."""

from schemas.presets._base import Preset

PRESET = Preset(
    name="github",
    scheme="hmac-sha256",
    action=("header:X-GitHub-Event", "json:/action"),
    event_id="header:X-GitHub-Delivery",
)
