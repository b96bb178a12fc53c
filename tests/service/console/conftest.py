"""Console fixtures: the real app in-process (as the read API tests use it), signed in with a real form post."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from tests import conftest as root
from tests.conftest import ADMIN_KEY, READ_KEY
from tests.service.api.conftest import app, client, ingest, insert_events

# The read API's fixtures: the app, its client, signed ingest, bulk rows; per-test Redis and SQL.
redis_url = root.redis_url
database_url = root.database_url
__all__ = ["ADMIN_KEY", "READ_KEY", "app", "client", "csrf_of", "ingest", "insert_events", "sign_in"]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(client: TestClient[Any], key: str, next_: str = "/ui/") -> Any:
    """Fill in and post the sign-in form exactly as a browser would; returns the POST's response."""
    form = client.get("/ui/login", params={"next": next_, "checked": "1"})
    assert form.status_code == 200, form.text
    return client.post(
        "/ui/login", data={"key": key, "csrf": csrf_of(form.text), "next": next_}, follow_redirects=False
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so a browser fixture knows whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
