"""`/ui/`: the overview: `GET /v1/stats` as tiles, the spool, and events and failures per minute over 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import get
from litestar.response import Template
from sqlalchemy.orm import Session

from service.console.chart import minute_chart
from service.console.web import Console, Viewer, page
from service.ingest.spool import SpoolError
from workers.ops.stats import per_minute, stats_or_counts

WINDOW = timedelta(hours=24)


@get("/", sync_to_thread=True)
def overview(console: Console, viewer: Viewer) -> Template:
    api = console.api
    now = datetime.now(UTC)
    since = (now - WINDOW).replace(second=0, microsecond=0)  # the chart's first minute: tiles and chart agree
    stats, queues_answered = stats_or_counts(api.engine, api.connections.redis, api.settings.redis.queue, since, now)
    with Session(api.engine) as session:
        series = per_minute(session, since, now)
    try:
        spooled: int | None = api.runtime.spool.count()
    except SpoolError:
        spooled = None
    queue = api.settings.redis.queue
    return page(
        "overview.html",
        viewer,
        title="Overview",
        active="overview",
        stats=stats,
        queue=queue,
        queue_depth=stats.queues.get(queue),
        scheduled=stats.queues.get(f"{queue}:scheduled"),
        queues_answered=queues_answered,
        spooled=spooled,
        chart=minute_chart(series),
    )
