"""`/ui/login` and `/ui/logout`: sign in with an API key, sign out for good.

The form carries a CSRF token that must equal the `hookyard_login` cookie
it came with (double submit: there is no session yet). A wrong key is 401
on the same form; attempts are limited per client address
(`LOGIN_ATTEMPTS_PER_MINUTE`, counted in Redis, open when Redis is away).

A link into the console followed from another site arrives without the
`SameSite=Strict` cookie; the form page then reloads itself once from this
site, which does send it, so a signed-in visitor goes straight on.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any

import structlog
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Redirect, Template

from schemas.errors import Forbidden, RateLimited
from service.console.sessions import COOKIE, LOGIN_COOKIE, same_token
from service.console.web import PREFIX, Console, console_state, is_https, page, safe_next, session_cookie

log = structlog.get_logger("hookyard.console.login")

LOGIN_ATTEMPTS_PER_MINUTE = 20
"""Sign-in attempts a client address may make a minute."""


def _login_cookie(request: Request[Any, Any, Any], value: str) -> Cookie:
    return Cookie(
        key=LOGIN_COOKIE,
        value=value,
        path=f"{PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def _form(
    request: Request[Any, Any, Any], target: str, *, status: int = 200, message: str = "", recheck: bool = False
) -> Template:
    token = secrets.token_urlsafe(24)
    response = page(
        "login.html",
        None,
        title="Sign in",
        status=status,
        next=target,
        login_csrf=token,
        message=message,
        recheck=recheck,
    )
    response.cookies.append(_login_cookie(request, token))
    return response


@get("/login", sync_to_thread=True)
def login_page(
    request: Request[Any, Any, Any],
    console: Console,
    next_: Annotated[str | None, Parameter(query="next")] = None,
    ended: str | None = None,
) -> Response[Any]:
    target = safe_next(next_)
    if console.sessions.verify(request.cookies.get(COOKIE)) is not None:
        return Redirect(target)
    checked = request.query_params.get("checked") is not None
    message = "Your session has ended. Sign in again." if ended else ""
    # Without a cookie this may be a cross-site arrival: reload once from here (see the module docstring).
    return _form(request, target, message=message, recheck=not checked and COOKIE not in request.cookies)


@post("/login", status_code=303)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    target = safe_next(form.get("next"))
    if not same_token(form.get("csrf"), request.cookies.get(LOGIN_COOKIE, "")):
        raise Forbidden("the sign-in form expired (or cookies are off): reload the page and try again")
    state = console_state(request.app)
    peer = request.client.host if request.client else None
    address = state.api.runtime.client_address.resolve(
        peer, request.headers.get("x-forwarded-for", "").encode("latin-1", "replace")
    )
    client = str(address) if address is not None else "unknown"
    verdict = await state.api.limiter.hit(f"ui-login:{client}", LOGIN_ATTEMPTS_PER_MINUTE)
    if not verdict.allowed:
        raise RateLimited.over(
            "too many sign-in attempts from this address; wait a minute",
            limit=LOGIN_ATTEMPTS_PER_MINUTE,
            count=verdict.count,
            retry_after=verdict.retry_after,
        )
    key = str(form.get("key") or "").strip()
    signed = await asyncio.to_thread(state.sessions.sign_in, key) if key else None
    if signed is None:
        log.info("console_sign_in_refused", client_ip=client)
        return _form(request, target, status=401, message="That key is not a configured API key.")
    cookie, session = signed
    log.info("console_signed_in", api_key=session.key_name, role=session.role)
    redirect = Redirect(target, status_code=303)
    redirect.cookies.append(session_cookie(request, cookie, int(state.sessions.lifetime.total_seconds())))
    redirect.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return redirect


@post("/logout", status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """Ends the session server-side (the form's CSRF token must match it, if it is still live)."""
    form = await request.form()
    state = console_state(request.app)
    cookie = request.cookies.get(COOKIE)
    viewer = await asyncio.to_thread(state.sessions.verify, cookie)
    if viewer is not None:
        if not same_token(form.get("csrf"), viewer.csrf_token):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")
        await asyncio.to_thread(state.sessions.sign_out, cookie)
        log.info("console_signed_out", api_key=viewer.key_name)
    redirect = Redirect("/ui/login?checked=1", status_code=303)  # ours: no cross-site recheck needed
    redirect.delete_cookie(COOKIE, path=PREFIX)
    return redirect
