"""Issue 12's targets: the console and `/v1/deliveries` at 1M stored events on PostgreSQL, and bulk replays.

Data, generated inside PostgreSQL after the reads section's events
(`bench.reads.generate`): every event has a `bench` delivery, succeeded
except every tenth (100,000 dead); 400,000 further events have a dead
`legacy` delivery, so the dead letters run 500,000 deep. Then, against a real
`hookyard serve` signed in to the console like a browser (cookie + CSRF form):

- the console's event list and dead letters: p50 of page 1, and of page
  10,000 (50 rows a page; its cursor found by walking the API, whose cursors
  the pages share) against page 1;
- `GET /v1/deliveries?limit=100`: page 1 and page 10,000;
- `POST /v1/replays` of the 100,000 dead `bench` deliveries: the dry run's
  time, then the replay's rate, deliveries re-queued per second from the 201
  to `done` (two `hookyard worker` processes run the replay job and the
  re-queued no-op deliveries meanwhile).
"""

from __future__ import annotations

import http.client
import re
import time
from urllib.parse import quote, urlencode

import msgspec
from sqlalchemy import create_engine, text

from bench.context import Context, Measured
from bench.databases import database, write_config
from bench.procs import Stack, hookyard, hookyard_env, stack_in, start_serve
from bench.reads import generate
from bench.report import Row, at_least, at_most, median, page_rows
from service.embedded_redis import free_port

PAGE_GOAL_MS = 50.0
DEEP_GOAL = 1.2
DRY_RUN_GOAL_S = 2.0
REPLAY_GOAL = 1000.0
CONSOLE_PAGE = 50
API_PAGE = 100
DEEP_PAGE = 10_000
SAMPLES = 40
ADMIN_KEY = "bench-admin-key-0123456789"
REPLAY_WORKERS = 2

_DELIVERIES = """
INSERT INTO deliveries (event_id, handler, status, attempts, max_attempts, last_error, created_at, updated_at,
                        last_started_at, last_duration_ms)
SELECT id, 'bench',
       CASE WHEN seq % 10 = 0 THEN 'dead' ELSE 'succeeded' END,
       CASE WHEN seq % 10 = 0 THEN 5 ELSE 1 END, 5,
       CASE WHEN seq % 10 = 0 THEN 'RuntimeError: downstream said no (at bench.py:1)' END,
       received_at, received_at + interval '5 ms', received_at, 0.2
FROM events
"""
_LEGACY = """
INSERT INTO deliveries (event_id, handler, status, attempts, max_attempts, last_error, created_at, updated_at)
SELECT id, 'legacy', 'dead', 3, 3, 'PermanentError: gone (at legacy.py:9)', received_at,
       received_at + interval '7 ms'
FROM events WHERE seq % 10 IN (1, 3, 5, 7)
"""


def generate_deliveries(db_url: str) -> float:
    started = time.perf_counter()
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(_DELIVERIES))
            conn.execute(text(_LEGACY))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE deliveries"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


class Browser:
    """One keep-alive connection with a console session (signed in through the form) and an API key."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, float]:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.connection.request(method, path, body=body, headers=sent)
                response = self.connection.getresponse()
                data = response.read()
                elapsed = (time.perf_counter() - started) * 1000.0
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return response.status, data, elapsed

    def sign_in(self, key: str) -> None:
        status, form, _ = self.request("GET", "/ui/login?checked=1")
        token = re.search(rb'name="csrf" value="([^"]+)"', form)
        if status != 200 or token is None:
            raise RuntimeError(f"console sign-in form: {status}")
        body = urlencode({"key": key, "csrf": token.group(1).decode(), "next": "/ui/"}).encode()
        status, _, _ = self.request("POST", "/ui/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303 or "hookyard_session" not in self.cookies:
            raise RuntimeError(f"console sign-in answered {status}")

    def api(self, method: str, path: str, payload: object | None = None) -> tuple[int, dict[str, object], float]:
        headers = {"X-API-Key": ADMIN_KEY}
        body = None
        if payload is not None:
            body = msgspec.json.encode(payload)
            headers["Content-Type"] = "application/json"
        status, data, elapsed = self.request(method, path, body, headers)
        return status, (msgspec.json.decode(data) if data else {}), elapsed


def cursor_at(browser: Browser, list_path: str, rows: int) -> str:
    """The cursor after `rows` rows of an API list (walked 1,000 then 50 at a time)."""
    cursor: str | None = None
    done = 0
    while done < rows:
        limit = 1000 if rows - done >= 1000 else CONSOLE_PAGE
        separator = "&" if "?" in list_path else "?"
        path = f"{list_path}{separator}limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
        status, body, _ = browser.api("GET", path)
        meta = body.get("meta") if isinstance(body, dict) else None
        cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
        if status != 200 or not isinstance(cursor, str):
            raise RuntimeError(f"cursor walk stopped at {done} rows (status {status})")
        done += limit
    assert cursor is not None
    return cursor


def first_and_deep(
    browser: Browser, first: str, deep: str, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    firsts: list[float] = []
    deeps: list[float] = []
    for _ in range(SAMPLES):
        for path, into in ((first, firsts), (deep, deeps)):
            status, _, elapsed = browser.request("GET", path, headers=headers)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            into.append(elapsed)
    return median(firsts), median(deeps)


def pair(label: str, first: float, deep: float, note: str = "") -> list[Row]:
    targets = (f"{label} p50, page 1", f"{label}, page {DEEP_PAGE:,} vs page 1, p50")
    return page_rows("operate", targets, first, deep, first_goal_ms=PAGE_GOAL_MS, deep_goal=DEEP_GOAL, note=note)


def replay(browser: Browser, stack: Stack, config_env: dict[str, str]) -> tuple[float, float, int]:
    """(dry run seconds, deliveries re-queued per second, deliveries)."""
    chosen = {"handlers": ["bench"], "delivery_status": "dead"}
    dry_times = []
    counts: dict[str, object] = {}
    for _ in range(3):
        status, body, elapsed = browser.api("POST", "/v1/replays", {"filter": chosen, "dry_run": True})
        if status != 200:
            raise RuntimeError(f"dry run answered {status}: {body}")
        counts = body["data"]  # type: ignore[assignment]
        dry_times.append(elapsed / 1000.0)
    workers = [stack.start(f"replay-worker-{i}", hookyard("worker"), config_env) for i in range(REPLAY_WORKERS)]
    time.sleep(3)  # workers up and waiting
    started = time.perf_counter()
    status, body, _ = browser.api("POST", "/v1/replays", {"filter": chosen})
    if status != 201:
        raise RuntimeError(f"replay answered {status}: {body}")
    replay_id = body["data"]["id"]  # type: ignore[index]
    deadline = started + 600
    while time.perf_counter() < deadline:
        status, body, _ = browser.api("GET", f"/v1/replays/{replay_id}")
        if status == 200 and body["data"]["status"] == "done":  # type: ignore[index]
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"replay not done after 600 s: {body}")
    span = time.perf_counter() - started
    for worker in workers:
        stack.stop(worker)
    deliveries = int(body["data"]["queued"])  # type: ignore[index]
    if deliveries != counts.get("deliveries"):
        raise RuntimeError(f"replay queued {deliveries}, dry run counted {counts}")
    return median(dry_times), deliveries / span, deliveries


def skipped(reason: str) -> Measured:
    return [Row(section="operate", target="console and replays", measured=None, unit="", note=reason)], {
        "skipped": reason
    }


def measure(ctx: Context) -> Measured:
    if ctx.pg_base is None:
        return skipped("skipped: no PostgreSQL reachable")
    workdir = ctx.workdir / "operate"
    workdir.mkdir()
    total = ctx.options.read_rows
    deep_rows = (DEEP_PAGE - 1) * CONSOLE_PAGE
    with stack_in(workdir) as stack, database("postgres", workdir, ctx.pg_base) as db_url:
        port = free_port()
        config = write_config(
            workdir / "hookyard.toml", port=port, redis_url=ctx.redis_url, database_url=db_url, spool=workdir / "spool"
        )
        with config.open("a") as extra:
            extra.write(f'[[api_keys]]\nname = "bench-admin"\nkey = "{ADMIN_KEY}"\nrole = "admin"\n')
            extra.write("rate_per_minute = 100000000\n")
        ctx.flush(0)
        print(f"  operate: generating {total:,} events and their deliveries in PostgreSQL", flush=True)
        generated = generate(db_url, total) + generate_deliveries(db_url)
        start_serve(stack, config, port, name="operate-serve")
        browser = Browser(port)
        browser.sign_in(ADMIN_KEY)
        note = f"{total:,} events, {total * 14 // 10:,} deliveries, generated in {generated:.0f} s"
        print("  operate: walking cursors to page 10,000", flush=True)
        events_cursor = cursor_at(browser, "/v1/events", min(deep_rows, total - CONSOLE_PAGE))
        dead_cursor = cursor_at(browser, "/v1/deliveries?status=dead", min(deep_rows, total // 2 - CONSOLE_PAGE))
        deliveries = total + total * 4 // 10
        api_cursor = cursor_at(browser, "/v1/deliveries", min((DEEP_PAGE - 1) * API_PAGE, deliveries - API_PAGE))
        rows: list[Row] = []
        events = first_and_deep(browser, "/ui/events", f"/ui/events?cursor={quote(events_cursor)}")
        rows += pair("console event list", *events, note=note)
        dead = first_and_deep(browser, "/ui/dead", f"/ui/dead?cursor={quote(dead_cursor)}")
        rows += pair("console dead letters", *dead, note="500,000 dead deliveries, grouped and listed")
        api = first_and_deep(
            browser,
            f"/v1/deliveries?limit={API_PAGE}",
            f"/v1/deliveries?limit={API_PAGE}&cursor={quote(api_cursor)}",
            {"X-API-Key": ADMIN_KEY},
        )
        rows += pair(f"GET /v1/deliveries?limit={API_PAGE}", *api)
        print("  operate: bulk replay of 100,000 dead deliveries", flush=True)
        dry, rate, replayed = replay(browser, stack, hookyard_env(config))
    rows += [
        Row(
            section="operate",
            target=f"bulk replay dry run ({replayed:,} deliveries)",
            measured=dry,
            unit="s",
            goal=f"<= {DRY_RUN_GOAL_S:g} s",
            passed=at_most(dry, DRY_RUN_GOAL_S),
        ),
        Row(
            section="operate",
            target=f"bulk replay, {replayed:,} deliveries re-queued",
            measured=rate,
            unit="deliveries/s",
            goal=f">= {REPLAY_GOAL:,.0f}/s",
            passed=at_least(rate, REPLAY_GOAL),
            note=f"{REPLAY_WORKERS} worker processes, no-op handler",
        ),
    ]
    raw = {"events_ms": events, "dead_ms": dead, "api_ms": api, "dry_run_s": dry, "replay_rate": rate}
    return rows, raw
