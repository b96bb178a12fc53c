"""`GET /v1/stream` against a real `hookyard serve`: live events, filters, Last-Event-ID resume."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid

import httpx
import msgspec

from service.api.reads import StreamRow
from service.api.stream_hub import POLL_SECONDS, Cursor
from tests.conftest import READ_KEY, gxm_body, gxm_headers, wait_for
from tests.service.api.conftest import ADMIN
from tests.service.test_metrics import sample

READ = {"X-API-Key": READ_KEY}


class Listener:
    """Reads SSE messages in a thread; `next()` waits for the next one."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.messages: queue.Queue[dict[str, str]] = queue.Queue()
        self.status: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            self._read(url, headers)
        except httpx.HTTPError:
            return  # the server stopped or the test closed us

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=httpx.Timeout(5, read=30)) as client, client.stream("GET", url, headers=headers) as r:
            self.status.put(r.status_code)
            message: dict[str, str] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    if "data" in message:
                        self.messages.put(message)
                    message = {}
                    continue
                field, _, value = line.partition(": ")
                message[field] = value

    def next(self, timeout: float = 10.0) -> dict[str, str]:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self._stop.set()


def _post(server: str, action: str) -> str:
    """A new event each call (the same `data` within one second would be a duplicate)."""
    body = gxm_body(action=action, payload={"nonce": uuid.uuid4().hex})
    response = httpx.post(f"{server}/webhooks/gxm", content=body, headers=gxm_headers())
    assert response.status_code == 202
    return str(response.json()["data"]["id"])


def test_stream_gets_events_ingested_after_it_opened_and_resumes(server, worker):
    before = _post(server, "LOCATION:CREATED")
    worker.drain()
    listener = Listener(f"{server}/v1/stream?action=LOCATION:*", ADMIN)
    assert listener.status.get(timeout=10) == 200

    first = _post(server, "LOCATION:CREATED")
    _post(server, "USER:CREATED")  # filtered out
    second = _post(server, "LOCATION:DELETED")
    worker.drain()
    got = [listener.next(), listener.next()]
    listener.close()
    events = [msgspec.json.decode(m["data"]) for m in got]
    assert [e["id"] for e in events] == [first, second]
    assert before not in [e["id"] for e in events]
    assert all(m["event"] == "event" for m in got)
    assert int(got[0]["id"]) < int(got[1]["id"])

    # Reconnect after the first message: nothing is missed, events stored meanwhile included.
    third = _post(server, "LOCATION:UPDATED")
    worker.drain()
    resume_headers = dict(ADMIN, **{"Last-Event-ID": got[0]["id"]})
    resumed = Listener(f"{server}/v1/stream?action=LOCATION:*&select=payload", resume_headers)
    again = [msgspec.json.decode(resumed.next()["data"]) for _ in range(2)]
    resumed.close()
    assert [e["id"] for e in again] == [second, third]
    assert "payload" in again[0]


def test_stream_errors(server):
    bad = httpx.get(f"{server}/v1/stream", headers=dict(ADMIN, **{"Last-Event-ID": "abc"}), timeout=5)
    assert bad.status_code == 400
    assert bad.json()["meta"]["code"] == "ERR:MSG:VALIDATION:LAST_EVENT_ID"
    assert httpx.get(f"{server}/v1/stream?action=nope", headers=ADMIN, timeout=5).status_code == 400
    assert httpx.get(f"{server}/v1/stream", timeout=5).status_code == 401


def _row(seq: int) -> StreamRow:
    return StreamRow(seq=seq, event=None)  # type: ignore[arg-type]


def test_cursor_waits_on_a_hole_then_passes_it():
    cursor = Cursor(10)
    assert [r.seq for r in cursor.take([_row(11), _row(13)], now=0.0)] == [11]
    assert cursor.take([_row(13)], now=1.0) == []  # 12 may still commit
    assert [r.seq for r in cursor.take([_row(12), _row(13)], now=1.5)] == [12, 13]  # it did
    assert cursor.take([_row(15)], now=2.0) == []
    assert [r.seq for r in cursor.take([_row(15)], now=4.5)] == [15]  # 14 never came


def _open(stack: contextlib.ExitStack, client: httpx.Client, url: str, headers: dict[str, str]) -> httpx.Response:
    """Open a stream and leave it open (until `stack` closes); its status and, if refused, its body."""
    response = stack.enter_context(client.stream("GET", url, headers=headers))
    if response.status_code != 200:
        response.read()
    return response


def test_streams_over_the_key_cap_or_the_server_cap_are_429_until_one_closes(make_config, server_for):
    config = make_config(server={"max_streams": 3, "max_streams_per_key": 2})
    server = server_for(config)
    url = f"{server}/v1/stream"
    with httpx.Client(timeout=httpx.Timeout(10, read=30)) as client, contextlib.ExitStack() as stack:
        first = contextlib.ExitStack()
        stack.enter_context(first)
        assert _open(first, client, url, READ).status_code == 200
        assert _open(stack, client, url, READ).status_code == 200
        refused = _open(stack, client, url, READ)
        assert refused.status_code == 429
        body = refused.json()
        assert body["meta"]["code"] == "ERR:MSG:RATELIMITTED"
        assert body["warnings"] == {"limits": {"streams": 2}, "current": {"streams": 2}}
        assert 0 < int(refused.headers["retry-after"]) <= 60

        assert _open(stack, client, url, ADMIN).status_code == 200  # another key: under its own cap
        full = _open(stack, client, url, ADMIN)
        assert full.status_code == 429  # the server's cap: 3 open
        assert full.json()["warnings"] == {"limits": {"streams": 3}, "current": {"streams": 3}}

        first.close()  # a reader leaves: its slot comes back
        wait_for(
            lambda: _open(stack, client, url, READ).status_code == 200, timeout=15, interval=0.5, what="a free slot"
        )


def test_streams_share_one_poll_and_each_gets_its_own_filters_and_fields(config, server, worker):
    located = Listener(f"{server}/v1/stream?action=LOCATION:*", READ)
    everything = Listener(f"{server}/v1/stream?select=payload", ADMIN)
    assert located.status.get(timeout=10) == 200
    assert everything.status.get(timeout=10) == 200

    first = _post(server, "LOCATION:CREATED")
    other = _post(server, "USER:CREATED")
    second = _post(server, "LOCATION:DELETED")
    worker.drain()
    seen_by_located = [msgspec.json.decode(located.next()["data"]) for _ in range(2)]
    seen_by_all = [msgspec.json.decode(everything.next()["data"]) for _ in range(3)]
    assert [e["id"] for e in seen_by_located] == [first, second]
    assert all("payload" not in e for e in seen_by_located)
    assert [e["id"] for e in seen_by_all] == [first, other, second]
    assert all("nonce" in e["payload"] for e in seen_by_all)

    # One database read per interval for every open stream of the process, not one per stream.
    def polls() -> float:
        text = httpx.get(f"{server}/metrics", timeout=5).text
        return sample(text, "hookyard_stream_polls_total") or 0.0

    before, started = polls(), time.monotonic()
    time.sleep(4 * POLL_SECONDS * 2)
    after, elapsed = polls(), time.monotonic() - started
    assert after > before  # the feed is being read
    assert after - before <= elapsed / POLL_SECONDS + 2  # two streams, yet at most one read per interval
    located.close()
    everything.close()
