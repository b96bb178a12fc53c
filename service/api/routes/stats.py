"""`GET /v1/stats`: counts for a dashboard panel, from `workers.ops.stats` (shared with `hookyard stats`).

When Redis does not answer, the database counts are still given, with
empty `queues` and `warnings.queues = "unavailable"`: a Redis outage is when
a dashboard is needed most.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from litestar import Request, get
from litestar.params import Parameter

from schemas.api import StatsEnvelope
from service.api.docs import error_responses
from service.api.filters import parse_time
from service.api.state import Api
from workers.ops.stats import stats_or_counts

log = structlog.get_logger("hookyard.api.stats")
DEFAULT_WINDOW = timedelta(hours=24)


@get(
    "/stats",
    sync_to_thread=True,
    summary="Counts by action and status, queue depths, oldest pending age",
    operation_id="GetStats",
    responses=error_responses(400),
)
def stats_route(
    api: Api,
    request: Request[Any, Any, Any],
    since: Annotated[str | None, Parameter(description="ISO 8601 (default: 24 hours ago)")] = None,
) -> StatsEnvelope:
    now = datetime.now(UTC)
    start = now - DEFAULT_WINDOW if since is None else parse_time(since, "since")
    stats, queues_answered = stats_or_counts(api.engine, api.connections.redis, api.settings.redis.queue, start, now)
    if queues_answered:
        return StatsEnvelope(data=stats)
    log.warning("stats_without_queues", request_id=request.scope.get("state", {}).get("request_id", ""))
    return StatsEnvelope(data=stats, warnings={"queues": "unavailable"})
