"""What every console page shares: its state, who is looking, rendering, errors, the security headers.

A page asks for `viewer` (the signed-in `ConsoleSession`; without one the
visitor is sent to `/ui/login` and back afterwards) and `console` (the
read API's state plus the session store), and answers `page(...)`: a
Litestar `Template` with the viewer, the navigation and the CSRF token in
its context. Errors become an HTML page with the right status, never a
trace: a bad filter is 400, a read session's POST 403, an unknown id 404,
the database away 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import structlog
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.params import Dependency
from litestar.response import Redirect, Template
from sqlalchemy.exc import OperationalError

from schemas.errors import Forbidden, HookyardError
from service.api.state import ApiState, api_state
from service.console.sessions import COOKIE, ConsoleSession, SessionStore, same_token
from service.errors import from_http_exception

log = structlog.get_logger("hookyard.console")

PREFIX = "/ui"
SECURITY_HEADERS = (
    (b"content-security-policy", b"default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
"""Sent with every `/ui` response (pages, errors, assets): nothing inline runs, nothing loads from elsewhere."""

NAV = (
    ("overview", "/ui/", "Overview"),
    ("events", "/ui/events", "Events"),
    ("dead", "/ui/dead", "Dead letters"),
    ("live", "/ui/live", "Live tail"),
    ("handlers", "/ui/handlers", "Handlers"),
    ("rejections", "/ui/rejections", "Rejections"),
)


class SignInRequired(Exception):
    """No live session: go to the sign-in page, then back to where the visitor was going."""

    def __init__(self, ended: bool) -> None:
        super().__init__("sign in first")
        self.ended = ended
        """A cookie was sent but is no longer good (expired, signed out, forged): say so on the form."""


@dataclass
class ConsoleState:
    api: ApiState
    sessions: SessionStore


def console_state(app: Any) -> ConsoleState:
    """The app's console state, built on first use (like `api_state`)."""
    state: ConsoleState | None = app.state.get("console")
    if state is None:
        api = api_state(app)
        settings = api.settings.console
        state = ConsoleState(api, SessionStore(api.engine, api.keys, settings.session_secret, settings.session_hours))
        app.state.console = state
    return state


Console = Annotated[ConsoleState, Dependency(skip_validation=True)]
Viewer = Annotated[ConsoleSession, Dependency(skip_validation=True)]


def provide_console(request: Request[Any, Any, Any]) -> ConsoleState:
    return console_state(request.app)


def provide_viewer(request: Request[Any, Any, Any]) -> ConsoleSession:
    """The signed-in session (a database read, so Litestar runs this in a worker thread)."""
    cookie = request.cookies.get(COOKIE)
    viewer = console_state(request.app).sessions.verify(cookie)
    if viewer is None:
        raise SignInRequired(ended=bool(cookie))
    return viewer


def page(template: str, viewer: ConsoleSession | None, *, title: str, status: int = 200, **context: Any) -> Template:
    """A console page: `template` with the viewer, navigation and CSRF token in its context."""
    return Template(
        template_name=template,
        context={"viewer": viewer, "title": title, "nav": NAV, "now": datetime.now(UTC), **context},
        status_code=status,
        media_type=MediaType.HTML,
        headers={"cache-control": "no-store"},
    )


def require_admin(viewer: ConsoleSession) -> None:
    if not viewer.is_admin:
        raise Forbidden("this needs a session signed in with an admin key")


def require_csrf(viewer: ConsoleSession, given: str | None) -> None:
    if not same_token(given, viewer.csrf_token):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a console path of this site (no open redirect)."""
    if not value:
        return "/ui/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not (parts.path == PREFIX or parts.path.startswith(PREFIX + "/")):
        return "/ui/"
    if "\\" in value or value.startswith("//"):
        return "/ui/"
    return value


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int | None) -> Cookie:
    """HttpOnly, SameSite=Strict, path `/ui`; Secure when the visitor came over HTTPS (directly, or
    through a trusted proxy that says so)."""
    return Cookie(
        key=COOKIE,
        value=value,
        path=PREFIX,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def is_https(request: Request[Any, Any, Any]) -> bool:
    if request.url.scheme == "https":
        return True
    client = request.client.host if request.client else None
    trusted = console_state(request.app).api.runtime.client_address.trusts(client)
    return trusted and request.headers.get("x-forwarded-proto", "").lower() == "https"


_ERROR_TITLES = {
    400: "That request does not make sense",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    429: "Too many attempts",
    500: "Something broke",
    503: "Not available right now",
}


def console_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every console error as a page with its status (or a trip to the sign-in page)."""
    if isinstance(exc, SignInRequired):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/?=&")
        redirect = Redirect(f"/ui/login?next={quote(target, safe='')}{'&ended=1' if exc.ended else ''}")
        if exc.ended:
            redirect.delete_cookie(COOKIE, path=PREFIX)
        return redirect
    if isinstance(exc, HookyardError):
        error = exc
    elif isinstance(exc, HTTPException):
        error = from_http_exception(exc)
    elif isinstance(exc, OperationalError):
        log.warning("console_database_unavailable", path=request.url.path, error=type(exc).__name__)
        error = HookyardError("the database is not answering; try again shortly")
        return _error_page(503, error.detail)
    else:
        log.error("console_failed", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        return _error_page(500, "an unexpected error; the server log has the details")
    return _error_page(error.status, error.detail, dict(error.headers))


def _error_page(status: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    response = page(
        "error.html", None, title=_ERROR_TITLES.get(status, "Error"), status=status, detail=detail, code=status
    )
    response.headers.update(headers or {})
    return response


def pager_links(given: dict[str, str], cursor: str | None, next_cursor: str | None) -> dict[str, str | None]:
    """The "Older" link (when another page follows) and the "Newest" one (when this is not page 1), filters kept."""
    return {
        "next_query": None if next_cursor is None else query_string(given, cursor=next_cursor),
        "first_query": query_string(given) if cursor else None,
    }


def query_string(values: dict[str, str], **changes: str | None) -> str:
    """A page's URL query with some values changed (None drops one), for links that keep the filters."""
    merged = {**values, **changes}
    return urlencode({key: value for key, value in merged.items() if value})
