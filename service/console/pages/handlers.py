"""`/ui/handlers`: each registered handler — patterns, limits — with its deliveries of the last 24 hours.

The list is `GET /v1/handlers`' (the API process's registry, the same modules
the workers load); the counts are deliveries updated in the window, by status
(`workers.ops.stats.handler_outcomes`). A handler that has deliveries but is
not registered here (removed, or its module failed to load in this process)
is listed too, so its dead letters are not hidden.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import get
from litestar.response import Template
from sqlalchemy.orm import Session

from service.console.web import Console, Viewer, page
from workers.ops.stats import handler_outcomes

WINDOW = timedelta(hours=24)


@get("/handlers", sync_to_thread=True)
def handlers_page(console: Console, viewer: Viewer) -> Template:
    api = console.api
    settings = api.settings.handlers
    infos = api.registry.describe(settings.default_max_attempts, settings.timeout_seconds)
    with Session(api.engine) as session:
        outcomes = handler_outcomes(session, datetime.now(UTC) - WINDOW)
    registered = {info.name for info in infos}
    return page(
        "handlers.html",
        viewer,
        title="Handlers",
        active="handlers",
        handlers=infos,
        outcomes=outcomes,
        unregistered=sorted(set(outcomes) - registered),
    )
