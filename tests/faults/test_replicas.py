"""Two API replicas receive the same event at the same moment: it is stored and handled once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import msgspec
import pytest

from tests.conftest import Config, ConfigFactory, Worker, gxm_headers, rows
from workers.registry import Registry

pytestmark = pytest.mark.faults


def test_the_same_event_at_two_replicas_is_stored_and_handled_once(
    make_config: ConfigFactory, server_for: Callable[..., str], worker: Worker, registry: Registry, config: Config
) -> None:
    # Two replicas: same Redis and database as `config`, their own ports.
    replica = make_config(database={"url": config.settings.database.url})
    bases = [server_for(config), server_for(replica)]
    runs: list[str] = []
    registry.handler("*", name="count")(lambda event: runs.append(event.id))

    outcomes: list[list[tuple[int, str, bool]]] = []
    for n in range(15):
        body = msgspec.json.encode({"data": {"sent_at": 1700000000, "action": "LOCATION:UPDATED", "payload": {"n": n}}})
        answers: list[tuple[int, str, bool]] = []
        barrier = threading.Barrier(2)

        def send(
            base: str,
            answers: list[tuple[int, str, bool]] = answers,
            body: bytes = body,
            barrier: threading.Barrier = barrier,
        ) -> None:
            barrier.wait()
            response = httpx.post(f"{base}/webhooks/gxm", content=body, headers=gxm_headers(), timeout=10)
            data = response.json()["data"]
            answers.append((response.status_code, data["id"], data["duplicate"]))

        threads = [threading.Thread(target=send, args=(base,)) for base in bases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes.append(answers)

    for answers in outcomes:
        assert sorted((status, dup) for status, _, dup in answers) == [(200, True), (202, False)]
        assert answers[0][1] == answers[1][1]
    worker.drain()
    first_ids = sorted(answers[0][1] for answers in outcomes)
    assert sorted(row[0] for row in rows(config, "select id from events")) == first_ids
    assert sorted(runs) == first_ids
