"""`stripe`: `payment_intent.succeeded` -> `PAYMENT_INTENT:SUCCEEDED`, de-duplicated on the `evt_...` id."""

from schemas.presets._base import Preset

PRESET = Preset(name="stripe", action=("json:/type",), event_id="json:/id", sent_at="json:/created")
