"""`GET /v1/rejections`: the ledger newest first, its filters and keyset pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert

from schemas.tables import RejectionRow
from tests.service.api.conftest import READ

NOW = datetime.now(UTC).replace(microsecond=0)


def _ledger(config, rows: list[tuple[str, str, int]]) -> None:
    """(source, code, count) rows, one second apart, oldest first."""
    engine = create_engine(config.settings.database.url)
    with engine.begin() as conn:
        conn.execute(
            insert(RejectionRow),
            [
                {
                    "source": source,
                    "status": 401 if code == "ERR:MSG:SIGNATURE" else 404,
                    "code": code,
                    "client_ip": "203.0.113.7",
                    "request_id": f"req-{i}",
                    "received_at": NOW - timedelta(seconds=len(rows) - i),
                    "count": count,
                }
                for i, (source, code, count) in enumerate(rows)
            ],
        )
    engine.dispose()


def test_newest_first_with_filters_and_pages(client, config):
    _ledger(
        config,
        [("gxm", "ERR:MSG:SIGNATURE", 3), ("nope", "ERR:MSG:NOT_FOUND", 1), ("gxm", "ERR:MSG:SIGNATURE", 40)],
    )
    body = client.get("/v1/rejections", headers=READ).json()
    assert [(r["source"], r["count"]) for r in body["data"]] == [("gxm", 40), ("nope", 1), ("gxm", 3)]
    first = body["data"][0]
    assert set(first) == {"id", "source", "status", "code", "client_ip", "request_id", "received_at", "count"}
    assert (first["status"], first["client_ip"], first["request_id"]) == (401, "203.0.113.7", "req-2")
    assert first["received_at"].endswith("Z")

    signature = client.get("/v1/rejections", params={"code": "ERR:MSG:SIGNATURE"}, headers=READ).json()["data"]
    assert [r["count"] for r in signature] == [40, 3]
    assert [
        r["source"] for r in client.get("/v1/rejections", params={"source": "nope"}, headers=READ).json()["data"]
    ] == ["nope"]
    since = (NOW - timedelta(seconds=1)).isoformat()
    assert [r["count"] for r in client.get("/v1/rejections", params={"since": since}, headers=READ).json()["data"]] == [
        40
    ]

    page = client.get("/v1/rejections", params={"limit": 2}, headers=READ).json()
    rest = client.get("/v1/rejections", params={"limit": 2, "cursor": page["meta"]["next_cursor"]}, headers=READ)
    assert [r["count"] for r in page["data"] + rest.json()["data"]] == [40, 1, 3]
    assert rest.json()["meta"]["next_cursor"] is None


def test_bad_parameters_are_400(client):
    for params, code in (
        ({"since": "then"}, "ERR:MSG:VALIDATION:SINCE"),
        ({"cursor": "x"}, "ERR:MSG:VALIDATION:CURSOR"),
        ({"limit": "1001"}, "ERR:MSG:VALIDATION:LIMIT"),
    ):
        response = client.get("/v1/rejections", params=params, headers=READ)
        assert response.status_code == 400, response.text
        assert response.json()["meta"]["code"] == code
