"""Vendor presets: one module per vendor, each naming its `Preset` as `PRESET`.

`PRESETS` is built from the modules (as `schemas.signatures.SCHEMES` is), so
adding a vendor is adding a module: settings accept its name, and `make
run`'s generated configuration shows a commented example of it. A preset
only fills keys the `[[sources]]` block leaves out; a key set by hand wins.
"""

from __future__ import annotations

from schemas.modules import collect
from schemas.presets._base import Preset

__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset"]

DEFAULT_PRESET = "gxm"


def _collect() -> dict[str, Preset]:
    return {preset.name: preset for preset in collect(__path__, __name__, "PRESET")}


PRESETS = _collect()
"""Preset name -> preset, one per module of this package."""
