"""`GET /v1/stream` against a real `hookyard serve`: live events, filters, Last-Event-ID resume."""

from __future__ import annotations

import queue
import threading
import uuid

import httpx
import msgspec

from service.api.reads import StreamRow
from service.api.routes.stream import Cursor
from tests.conftest import gxm_body, gxm_headers
from tests.service.api.conftest import ADMIN


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
