"""Liveness and readiness: what a load balancer and Kubernetes ask.

Ready is 200 `ok` when Redis and the database answer, 200 `degraded` while
either is away but events are still accepted (the spool), or while Redis does
not fsync a write before answering (CONTRACT section 9: `redis.detail` and
`warnings.redis` name the risk), and 503 only when this process could not
accept an event at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec
from sqlalchemy import text

from schemas.wire import Envelope
from service.errors import envelope_response
from service.ingest.spool import SpoolError
from service.runtime import Runtime


class Component(msgspec.Struct):
    status: str
    detail: str = ""


class Readiness(msgspec.Struct):
    status: str
    redis: Component
    database: Component
    spool: Component


async def _check_redis(runtime: Runtime) -> Component:
    try:
        await asyncio.wait_for(runtime.redis.ping(), timeout=runtime.settings.redis.socket_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - any failure means "down", with its name
        return Component("down", type(exc).__name__)
    return Component("up")


def _ping_database(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def _check_database(runtime: Runtime) -> Component:
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping_database, runtime), timeout=5)
    except Exception as exc:  # noqa: BLE001
        return Component("down", type(exc).__name__)
    return Component("up")


async def _check_spool(runtime: Runtime) -> Component:
    try:
        pending = await runtime.spool.call(runtime.spool.count)
    except SpoolError as exc:
        return Component("down", str(exc).split(":")[0])
    return Component("up", f"{pending} event(s) waiting" if pending else "")


@get("/health/live", sync_to_thread=False, tags=["health"], summary="The process is running")
def live() -> Envelope:
    return Envelope(data={"status": "ok"})


class ReadinessEnvelope(msgspec.Struct):
    """The documented shape of `/health/ready` (the handler writes it already encoded)."""

    data: Readiness
    meta: dict[str, Any] = msgspec.field(default_factory=dict)
    warnings: dict[str, Any] = msgspec.field(default_factory=dict)


_READY_DOC = {
    200: ResponseSpec(ReadinessEnvelope, description="`ok`, or `degraded` while events still go to the spool"),
    503: ResponseSpec(ReadinessEnvelope, description="This process cannot accept events"),
}


@get("/health/ready", tags=["health"], summary="Can this process accept events?", responses=_READY_DOC)
async def ready(request: Request[Any, Any, Any]) -> Response[bytes]:
    runtime: Runtime = request.app.state.runtime
    redis_state, database_state, spool_state = await asyncio.gather(
        _check_redis(runtime), _check_database(runtime), _check_spool(runtime)
    )
    accepting = redis_state.status == "up" or spool_state.status == "up"
    risk = runtime.queue.fsync.risk if redis_state.status == "up" else ""
    if risk:
        redis_state = Component("up", risk)
    if not accepting:
        status = "unavailable"
    elif redis_state.status == "up" and database_state.status == "up" and not risk:
        status = "ok"
    else:
        status = "degraded"
    body = Envelope(
        data=Readiness(status, redis_state, database_state, spool_state),
        warnings={"redis": risk} if risk else {},
    )
    return envelope_response(200 if accepting else 503, body, {"retry-after": "5"} if not accepting else None)
