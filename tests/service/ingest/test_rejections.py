"""Every ingest rejection lands in the ledger (`GET /v1/rejections`), through a real `hookyard serve`."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import create_engine, select

from schemas.tables import RejectionRow
from tests.conftest import gxm_body, gxm_headers, wait_for
from tests.service.conftest import IngestServer


def _ledger(server: IngestServer, request_ids: list[str]) -> list[tuple[str, int, str, str, int, str]]:
    engine = create_engine(server.config.settings.database.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    RejectionRow.source,
                    RejectionRow.status,
                    RejectionRow.code,
                    RejectionRow.client_ip,
                    RejectionRow.count.label("n"),
                    RejectionRow.request_id,
                ).where(RejectionRow.request_id.in_(request_ids))
            ).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def test_each_rejection_is_counted_with_source_code_and_client_address(ingest: IngestServer):
    marker = uuid.uuid4().hex[:8]
    sent: list[str] = []

    def post(path: str, ip: str, **kwargs) -> httpx.Response:
        request_id = f"{marker}-{len(sent)}"
        sent.append(request_id)
        headers = {"X-Request-ID": request_id, "X-Forwarded-For": ip, **kwargs.pop("headers", {})}
        return httpx.post(f"{ingest.base}{path}", headers=headers, timeout=5, **kwargs)

    for _ in range(3):
        assert (
            post("/webhooks/gxm", "203.0.113.7", content=gxm_body(), headers=gxm_headers("0" * 64)).status_code == 401
        )
    assert post("/webhooks/nope", "203.0.113.8", content=gxm_body(), headers=gxm_headers()).status_code == 404
    assert post("/webhooks/gxm", "203.0.113.9", content=b"{", headers=gxm_headers()).status_code == 400
    accepted = post("/webhooks/gxm", "203.0.113.9", content=gxm_body(payload={"m": marker}), headers=gxm_headers())
    assert accepted.status_code == 202

    def counted() -> list[tuple[str, int, str, str, int, str]] | None:
        rows = _ledger(ingest, sent)
        return rows if sum(row[4] for row in rows) >= 5 else None

    rows = wait_for(counted, timeout=10, what="the ledger flush")
    totals: dict[tuple[str, int, str, str], int] = {}
    for source, status, code, ip, count, _ in rows:
        totals[(source, status, code, ip)] = totals.get((source, status, code, ip), 0) + count
    assert totals == {
        ("gxm", 401, "ERR:MSG:SIGNATURE", "203.0.113.7"): 3,
        ("nope", 404, "ERR:MSG:NOT_FOUND", "203.0.113.8"): 1,
        ("gxm", 400, "ERR:MSG:VALIDATION:JSON", "203.0.113.9"): 1,
    }
    assert sent[-1] not in {row[5] for row in rows}  # the accepted event is no rejection
