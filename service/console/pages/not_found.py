"""Any other `/ui/...` path: the console's 404 page (after sign-in, like every page)."""

from __future__ import annotations

from litestar import get

from schemas.errors import NotFound
from service.console.web import Viewer


@get("/{rest:path}", sync_to_thread=False)
def not_found(viewer: Viewer, rest: str) -> None:
    raise NotFound(f"the console has no page {rest!r}")
