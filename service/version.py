"""The one version string: the installed distribution's (pyproject.toml), for `--version`, OpenAPI and metrics."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version

UNKNOWN = "0+unknown"


@cache
def version() -> str:
    try:
        return distribution_version("hookyard")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return UNKNOWN
