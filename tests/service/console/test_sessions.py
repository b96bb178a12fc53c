"""Signing in and out of the console: cookies, CSRF, expiry, revocation, and what a visitor without a session sees."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, update

from schemas.tables import ConsoleSessionRow
from service.app import create_app
from tests.service.console.conftest import ADMIN_KEY, READ_KEY, csrf_of, sign_in

CSP = "default-src 'self'"


def test_every_page_sends_a_visitor_without_a_session_to_sign_in_and_back(client):
    for path in (
        "/ui/",
        "/ui/events?status=failed",
        "/ui/dead",
        "/ui/live",
        "/ui/handlers",
        "/ui/rejections",
        "/ui/events/01a20856-3016-738b-a446-277ac917831e",
        "/ui/no-such-page",
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code in (302, 303), (path, response.status_code)
        assert response.headers["location"].startswith("/ui/login?next=")
        assert CSP in response.headers["content-security-policy"]
    signed = sign_in(client, ADMIN_KEY, next_="/ui/events?status=failed")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ui/events?status=failed"
    assert client.get("/ui/events?status=failed").status_code == 200


def test_the_session_cookie_is_httponly_strict_and_scoped_to_the_console(client):
    response = sign_in(client, READ_KEY)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("hookyard_session=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain HTTP here; over HTTPS it is Secure
    page = client.get("/ui/")
    assert page.status_code == 200
    assert 'data-stat="events-total"' in page.text


def test_a_wrong_key_is_401_on_the_form_and_a_missing_form_token_is_403(client):
    wrong = sign_in(client, "not-a-key")
    assert wrong.status_code == 401
    assert "not a configured API key" in wrong.text
    assert "hookyard_session" not in wrong.headers.get("set-cookie", "")
    no_token = client.post("/ui/login", data={"key": ADMIN_KEY}, follow_redirects=False)
    assert no_token.status_code == 403
    assert "<h1>" in no_token.text
    assert "hookyard_session" not in no_token.headers.get("set-cookie", "")


def test_next_never_leaves_the_console(client):
    for target in ("https://evil.example/", "//evil.example/ui/", "/v1/events", "/ui\\..\\x"):
        client.cookies.clear()
        response = sign_in(client, ADMIN_KEY, next_=target)
        assert response.headers["location"] == "/ui/", target


def test_sign_out_revokes_the_session_server_side_so_a_copied_cookie_dies(client):
    sign_in(client, ADMIN_KEY)
    copied = client.cookies.get("hookyard_session")
    assert copied
    page = client.get("/ui/")
    out = client.post("/ui/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/login?checked=1"
    client.cookies.set("hookyard_session", copied, path="/ui")  # the cookie as copied before sign-out
    replayed = client.get("/ui/", follow_redirects=False)
    assert replayed.status_code in (302, 303)
    assert "ended=1" in replayed.headers["location"]


def test_sign_out_needs_the_pages_csrf_token(client):
    sign_in(client, ADMIN_KEY)
    forged = client.post("/ui/logout", data={}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/ui/", follow_redirects=False).status_code == 200  # still signed in


@pytest.mark.parametrize("tamper", ["signature", "expiry", "garbage"])
def test_a_forged_or_altered_cookie_is_no_session(client, tamper):
    sign_in(client, ADMIN_KEY)
    good = client.cookies.get("hookyard_session")
    version, token, expires, signature = good.split(".")
    forged = {
        "signature": f"{version}.{token}.{expires}.{signature[::-1]}",
        "expiry": f"{version}.{token}.{int(expires) + 86400}.{signature}",
        "garbage": "v1.%%%.x.y",
    }[tamper]
    client.cookies.clear()
    client.cookies.set("hookyard_session", forged, path="/ui")
    response = client.get("/ui/", follow_redirects=False)
    assert response.status_code in (302, 303)
    assert "ended=1" in response.headers["location"]
    login = client.get(response.headers["location"])
    assert "Your session has ended" in login.text


def test_the_server_expires_sessions(client, config):
    sign_in(client, READ_KEY)
    engine = create_engine(config.settings.database.url)
    with engine.begin() as conn:
        conn.execute(update(ConsoleSessionRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()
    assert client.get("/ui/", follow_redirects=False).status_code in (302, 303)


def test_a_key_removed_from_the_configuration_ends_its_sessions(client, make_config):
    sign_in(client, READ_KEY)
    cookie = client.cookies.get("hookyard_session")
    only_admin = make_config(api_keys=[{"name": "admin", "key": ADMIN_KEY, "role": "admin"}])
    with TestClient(create_app(only_admin.settings), base_url="http://127.0.0.1") as other:  # type: ignore[arg-type]
        other.cookies.set("hookyard_session", cookie, path="/ui")
        assert other.get("/ui/", follow_redirects=False).status_code in (302, 303)


def test_sign_in_attempts_are_limited_per_address(client):
    from service.console.pages.login import LOGIN_ATTEMPTS_PER_MINUTE  # noqa: PLC0415

    statuses = [sign_in(client, "wrong").status_code for _ in range(LOGIN_ATTEMPTS_PER_MINUTE + 1)]
    assert statuses[:-1] == [401] * LOGIN_ATTEMPTS_PER_MINUTE
    assert statuses[-1] == 429
    time.sleep(0)  # the window is Redis's; the next test has a fresh database


def test_over_https_the_cookie_is_secure(app):
    with TestClient(app, base_url="https://127.0.0.1") as secure:  # type: ignore[arg-type]
        response = sign_in(secure, ADMIN_KEY)
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()
