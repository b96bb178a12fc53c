"""`gxm` (the default): GuestXM's envelope (CONTRACT section 4), signed with `X-GXM-APISIGNATURE`."""

from schemas.presets._base import Preset

PRESET = Preset(name="gxm", scheme="gxm-sha256", format="gxm")
