"""Registries built from the modules of a package: adding an extension is adding a module.

Schemes (`schemas.signatures`), presets (`schemas.presets`) and body formats
(`service.ingest.formats`) each keep one extension per module under a fixed
attribute name; a module whose name starts with `_` holds shared code.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType
from typing import Any


def public_modules(path: Iterable[str], package: str) -> list[ModuleType]:
    """Every public module of the package, imported, in module-name order."""
    return [
        importlib.import_module(f"{package}.{info.name}")
        for info in sorted(pkgutil.iter_modules(path), key=lambda info: info.name)
        if not info.name.startswith("_")
    ]


def collect(path: Iterable[str], package: str, attribute: str) -> list[Any]:
    """`attribute` of every public module of the package, in module-name order."""
    return [getattr(module, attribute) for module in public_modules(path, package)]
