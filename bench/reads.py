"""Target 5: the read API on a large PostgreSQL table, first page against page 10,000.

The events are generated inside PostgreSQL (`INSERT ... SELECT` over
`generate_series`): UUIDv7-shaped ids 10 ms apart, four actions, small
payloads. Then `GET /v1/events?limit=100` is timed for page 1 and for the
last page (reached by following cursors, as a dashboard would), alternating
requests so drift hits both alike. Written against CONTRACT section 6; when
`/v1/events` answers 404 (the read API is not on this branch yet) the
targets are reported as skipped.
"""

from __future__ import annotations

import http.client
import time
from urllib.parse import quote

import msgspec
from sqlalchemy import create_engine, text

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.procs import API_KEY, stack_in, start_serve
from bench.report import Row, median, page_rows
from service.embedded_redis import free_port

P50_GOAL_MS = 10.0
DEEP_GOAL = 1.2
PAGE = 100
SAMPLES = 100

_GENERATE = """
INSERT INTO events (id, source, fingerprint, action, resource, verb, sent_at, received_at, stored_at,
                    status, request_id, payload, body)
SELECT
  substr(t.h, 1, 8) || '-' || substr(t.h, 9, 4) || '-7' || substr(t.r, 1, 3) || '-8' || substr(t.r, 4, 3)
    || '-' || substr(t.r, 7, 12),
  'gxm', t.r, t.action, split_part(t.action, ':', 1), split_part(t.action, ':', 2),
  (t.ms / 1000), to_timestamp(t.ms / 1000.0), to_timestamp(t.ms / 1000.0), 'processed', t.r,
  '{"company_id":' || g || '}',
  '{"data":{"sent_at":' || (t.ms / 1000) || ',"action":"' || t.action || '","payload":{"company_id":' || g || '}}}'
FROM generate_series(1, :rows) AS g,
LATERAL (
  SELECT lpad(to_hex(:now_ms - (:rows - g) * 10), 12, '0') AS h, md5(g::text) AS r, :now_ms - (:rows - g) * 10 AS ms,
         (ARRAY['LOCATION:CREATED', 'LOCATION:UPDATED', 'LOCATION:DELETED', 'BOOKING:CREATED'])[1 + g % 4] AS action
) AS t
"""


def generate(db_url: str, rows: int) -> float:
    """Insert `rows` events; returns the seconds it took."""
    started = time.perf_counter()
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(_GENERATE), {"rows": rows, "now_ms": int(time.time() * 1000)})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE events"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


class Reader:
    """One keep-alive connection, reopened if the server closed it while idle."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def _fetch(self, path: str) -> tuple[http.client.HTTPResponse, bytes]:
        for attempt in (1, 2):
            try:
                self.connection.request("GET", path, headers={"X-API-Key": API_KEY})
                response = self.connection.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, limit: int, cursor: str | None) -> tuple[int, float, str | None]:
        path = f"/v1/events?limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
        started = time.perf_counter()
        response, body = self._fetch(path)
        elapsed = (time.perf_counter() - started) * 1000.0
        if response.status != 200:
            return response.status, elapsed, None
        meta = msgspec.json.decode(body).get("meta", {})
        return 200, elapsed, meta.get("next_cursor")


def skipped(reason: str) -> Measured:
    rows = [
        Row(section="reads", target="GET /v1/events?limit=100 p50, page 1", measured=None, unit="ms", note=reason),
        Row(section="reads", target="page 10,000 vs page 1 (by cursor)", measured=None, unit="ms"),
    ]
    return rows, {"skipped": reason}


def measure(ctx: Context) -> Measured:
    if ctx.pg_base is None:
        return skipped("skipped: no PostgreSQL reachable")
    workdir = ctx.workdir / "reads"
    workdir.mkdir()
    total = ctx.options.read_rows
    deep_page = total // PAGE
    with stack_in(workdir) as stack, database("postgres", workdir, ctx.pg_base) as db_url:
        port = free_port()
        config = write_config(
            workdir / "hookyard.toml", port=port, redis_url=ctx.redis_url, database_url=db_url, spool=workdir / "spool"
        )
        start_serve(stack, config, port)
        reader = Reader(port)
        status, _, _ = reader.get(PAGE, None)
        if status == 404:
            return skipped("skipped: /v1 not present")
        if status != 200:
            return skipped(f"skipped: GET /v1/events answered {status}")
        print(f"  reads: generating {total:,} events in PostgreSQL", flush=True)
        generated = generate(db_url, total)
        print(f"  reads: generated in {generated:.1f} s; walking to page {deep_page:,}", flush=True)
        walked = time.perf_counter()
        cursor: str | None = None
        skip = (deep_page - 1) * PAGE
        for limit, count in ((1000, skip // 1000), (PAGE, (skip % 1000) // PAGE)):
            for _ in range(count):
                status, _, cursor = reader.get(limit, cursor)
                if status != 200 or cursor is None:
                    return skipped(f"skipped: cursor walk stopped (status {status})")
        walked = time.perf_counter() - walked
        first: list[float] = []
        deep: list[float] = []
        for _ in range(SAMPLES):
            first.append(reader.get(PAGE, None)[1])
            deep.append(reader.get(PAGE, cursor)[1])
    note = f"{total:,} events, generated in {generated:.0f} s, cursor walk {walked:.0f} s, {SAMPLES} samples each"
    rows = page_rows(
        "reads",
        ("GET /v1/events?limit=100 p50, page 1", f"page {deep_page:,} vs page 1 (by cursor), p50"),
        median(first),
        median(deep),
        first_goal_ms=P50_GOAL_MS,
        deep_goal=DEEP_GOAL,
        note=note,
    )
    return rows, {"page1_ms": first, "deep_ms": deep, "generated_s": generated, "walk_s": walked}
