"""Migrations: 0001 -> 0002 keeps every stored event, and the newest revision is exactly `schemas.tables`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from schemas.migrate import alembic_config, upgrade
from schemas.tables import Base
from service.api.reads import get_event
from tests.conftest import POSTGRES_ENV, postgres_schema

EVENT_ID = "0190d1a2-7c3e-7a00-8000-000000000001"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} not set")
    with postgres_schema(os.environ[POSTGRES_ENV]) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def test_an_event_stored_before_0002_is_kept_and_reads_with_no_headers(empty_engine: Engine) -> None:
    config = alembic_config(empty_engine.url.render_as_string(hide_password=False))
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "INSERT INTO events (id, source, fingerprint, action, resource, verb, sent_at, received_at, stored_at,"
                " status, request_id, payload, body) VALUES (:id, 'gxm', 'fp', 'LOCATION:CREATED', 'LOCATION',"
                " 'CREATED', 1, :t, :t, 'stored', 'r', '{}', '{\"data\": {}}')"
            ),
            {"id": EVENT_ID, "t": "2026-11-23 08:00:00"},
        )
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT vendor_event_id, headers FROM events")).all() == [(None, None)]
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    event = get_event(empty_engine, EVENT_ID, headers=True)
    assert event is not None
    assert event.headers == {}
    assert event.action == "LOCATION:CREATED"
