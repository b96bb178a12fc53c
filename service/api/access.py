"""The guard on every `/v1` route: a known key (401), the right role (403), under its rate (429).

A route asks for admin with `opt={"role": "admin"}` (as `admin_post` does); the default is read.
The key's name (never the key) is kept on the request for logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec

from schemas.errors import Forbidden, RateLimited, Unauthorized
from service.api.auth import presented_key
from service.api.docs import error_responses
from service.api.state import api_state


def request_id(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return str(connection.scope.get("state", {}).get("request_id", ""))


async def require_key(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    state = api_state(connection.app)
    given = presented_key(connection.headers.get("authorization"), connection.headers.get("x-api-key"))
    key = None if given is None else state.keys.identify(given)
    if key is None:
        raise Unauthorized(
            "a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
            headers=(("www-authenticate", "Bearer"),),
        )
    role = str(handler.opt.get("role", "read"))
    if not key.allows(role):
        raise Forbidden(f"this call needs an {role} key")
    verdict = await state.limiter.hit(key.name, key.rate_per_minute, request_id(connection))
    if not verdict.allowed:
        raise RateLimited.over(
            "too many requests", limit=key.rate_per_minute, count=verdict.count, retry_after=verdict.retry_after
        )
    connection.scope.setdefault("state", {})["api_key"] = key.name


def admin_post(
    path: str, *, errors: tuple[int, ...], responses: Mapping[int, ResponseSpec] | None = None, **documented: Any
) -> post:
    """A `POST` for admin keys only (a read key gets 403, documented with `errors`), run in a worker thread."""
    return post(
        path,
        sync_to_thread=True,
        opt={"role": "admin"},
        responses={**(responses or {}), **error_responses(403, *errors)},
        **documented,
    )
