"""A store job that fails for good gives its fingerprints back: a re-delivery is stored, never a 404 id."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import msgspec
import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry

from schemas.wire import QueuedEvent
from tests.conftest import ADMIN_KEY, Config, ConfigFactory, gxm_body, gxm_headers, rows
from tests.faults.conftest import KillableRedis
from workers.registry import Registry
from workers.shared.defaults import STORE_BATCH, job_options
from workers.shared.serializer import JSONSerializer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

BODY = gxm_body(payload={"order": 1}, sent_at=1700000000)


def _post(base: str) -> httpx.Response:
    return httpx.post(f"{base}/webhooks/gxm", content=BODY, headers=gxm_headers(), timeout=15)


def _poison_the_only_job(config: Config) -> None:
    """Make the waiting store job fail for good: no retries left, and an event body the store cannot read."""
    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        [job_id] = client.lrange("rq:queue:hookyard", 0, -1)
        key = f"rq:job:{job_id.decode()}"
        data = msgspec.json.decode(client.hget(key, "data") or b"")
        # A body that is not a GuestXM envelope: storing it raises, as a bug would.
        events = [msgspec.convert(item, QueuedEvent) for item in data[2][0]]
        data[2][0] = [msgspec.to_builtins(msgspec.structs.replace(event, body="{}")) for event in events]
        client.hset(key, mapping={"data": msgspec.json.encode(data), "retries_left": 0})
    finally:
        client.close()


def _failed_jobs(config: Config) -> int:
    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        return FailedJobRegistry("hookyard", connection=client).count
    finally:
        client.close()


def test_a_redelivery_after_its_store_job_failed_for_good_is_stored_not_a_duplicate_of_a_404(
    make_config: ConfigFactory, server_for: Callable[..., str], worker_for: Callable[..., object]
) -> None:
    config = make_config()
    base = server_for(config)
    first = _post(base)
    assert first.status_code == 202
    _poison_the_only_job(config)
    worker = worker_for(config, Registry())
    worker.drain()  # type: ignore[attr-defined]
    assert _failed_jobs(config) == 1
    admin = {"X-API-Key": ADMIN_KEY}
    assert httpx.get(f"{base}/v1/events/{first.json()['data']['id']}", headers=admin, timeout=10).status_code == 404

    again = _post(base)
    assert again.status_code == 202, again.text
    assert again.json()["data"]["duplicate"] is False
    worker.drain()  # type: ignore[attr-defined]
    second_id = again.json()["data"]["id"]
    assert httpx.get(f"{base}/v1/events/{second_id}", headers=admin, timeout=10).status_code == 200

    third = _post(base)
    assert third.status_code == 200
    assert third.json()["data"] == {"id": second_id, "status": "queued", "duplicate": True}
    assert rows(config, "select id from events") == [(second_id,)]


def test_a_failed_store_job_keeps_the_fingerprints_of_events_already_stored(
    make_config: ConfigFactory, server_for: Callable[..., str], worker_for: Callable[..., object]
) -> None:
    """The database is the last word: an event stored by an earlier run keeps its fingerprint when a later
    job holding it fails for good, so its re-delivery is still 200 with the first id."""
    config = make_config()
    base = server_for(config)
    first = _post(base)
    assert first.status_code == 202
    worker = worker_for(config, Registry())
    worker.drain()  # type: ignore[attr-defined]
    first_id = first.json()["data"]["id"]
    assert rows(config, "select id from events") == [(first_id,)]

    # The same event again in a job that fails for good (as if its first job had run twice), beside a poison one.
    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        fingerprints = client.hgetall("hookyard:fp:gxm")
        [(fingerprint, owner)] = fingerprints.items()
        assert owner.decode() == first_id
        stored = QueuedEvent(
            id=first_id, source="gxm", fingerprint=fingerprint.decode(), received_at_us=1, request_id="r1", body="{}"
        )
        poison = msgspec.structs.replace(stored, id="01POISON", fingerprint="poison", request_id="r2")
        client.hset("hookyard:fp:gxm", "poison", "01POISON")
        queue = Queue("hookyard", connection=client, serializer=JSONSerializer)
        job = queue.enqueue(STORE_BATCH, [stored, poison], **job_options("store 2 event(s)", store=True))
        client.hset(f"rq:job:{job.id}", "retries_left", 0)
    finally:
        client.close()
    worker.drain()  # type: ignore[attr-defined]
    assert _failed_jobs(config) == 1

    again = _post(base)
    assert again.status_code == 200
    assert again.json()["data"] == {"id": first_id, "status": "queued", "duplicate": True}
    client = redis.Redis.from_url(config.settings.redis.url)
    try:
        assert client.hget("hookyard:fp:gxm", "poison") is None, "the unstored event's fingerprint is released"
    finally:
        client.close()


def _admin_get(base: str, event_id: str) -> int:
    return httpx.get(f"{base}/v1/events/{event_id}", headers={"X-API-Key": ADMIN_KEY}, timeout=10).status_code


def _stored_then_redelivered(base: str, config: Config, worker: object, forget: Callable[[], None]) -> None:
    """Store one event, let Redis forget it (`forget`), then re-deliver it, five times at once and once
    more: every answer is 200 with the first id, and the database holds it once."""
    first = _post(base)
    worker.drain()  # type: ignore[attr-defined]
    first_id = first.json()["data"]["id"]
    forget()

    with ThreadPoolExecutor(5) as pool:  # repeats within one group commit, too
        answers = list(pool.map(lambda _: _post(base), range(5)))
    for again in answers:
        assert again.status_code == 200, again.text
        assert again.json()["data"] == {"id": first_id, "status": "queued", "duplicate": True}
    worker.drain()  # type: ignore[attr-defined]
    assert rows(config, "select id from events") == [(first_id,)]
    assert _admin_get(base, first_id) == 200

    third = _post(base)
    assert third.status_code == 200
    assert third.json()["data"]["id"] == first_id


def test_a_redis_that_lost_its_data_still_answers_a_redelivery_200_with_the_first_id(
    make_config: ConfigFactory, server_for: Callable[..., str], worker_for: Callable[..., object]
) -> None:
    """Redis emptied under a running API (restarted without its data, FLUSHALL): the database is asked
    about new fingerprints until the memory is rebuilt from it, and is stored once either way."""
    config = make_config()
    base = server_for(config)
    worker = worker_for(config, Registry())
    client = redis.Redis.from_url(config.settings.redis.url)

    def forget() -> None:
        client.delete("hookyard:fp:gxm", "hookyard:fp-complete")

    try:
        _stored_then_redelivered(base, config, worker, forget)
        deadline = time.monotonic() + 10
        while client.get("hookyard:fp-complete") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("hookyard:fp-complete") is not None, "the memory is rebuilt and marked whole"
        assert client.hlen("hookyard:fp:gxm") == 1
    finally:
        client.close()


def test_a_redis_server_restored_from_another_ones_data_gets_the_first_id_without_any_error_seen(
    make_config: ConfigFactory, server_for: Callable[..., str], worker_for: Callable[..., object]
) -> None:
    """A backup restored, or a replica promoted: its data says "memory complete" for the server it came
    from, and lacks the newest fingerprints. The API sees no error at all; the script compares the mark
    with its own server's `run_id` and the database answers."""
    config = make_config()
    base = server_for(config)
    worker = worker_for(config, Registry())
    client = redis.Redis.from_url(config.settings.redis.url)

    def forget() -> None:
        client.delete("hookyard:fp:gxm")  # what the copy never received
        client.set("hookyard:fp-complete", "f" * 40)  # the mark of the server it was copied from

    try:
        _stored_then_redelivered(base, config, worker, forget)
    finally:
        client.close()


def test_a_redelivery_to_a_restarted_redis_lacking_the_fingerprint_gets_the_first_id(
    make_config: ConfigFactory,
    killable_redis: KillableRedis,
    server_for: Callable[..., str],
    worker_for: Callable[..., object],
) -> None:
    """Killed and restarted (another `run_id`) without the newest fingerprint: the database answers."""
    config = make_config(redis={"url": killable_redis.url})
    base = server_for(config)
    worker = worker_for(config, Registry())

    def forget() -> None:
        client = killable_redis.client()
        try:
            client.delete("hookyard:fp:gxm")
        finally:
            client.close()
        killable_redis.kill()
        killable_redis.start()

    _stored_then_redelivered(base, config, worker, forget)


def test_a_redis_user_refused_info_still_queues_and_deduplicates(
    make_config: ConfigFactory, server_for: Callable[..., str], worker_for: Callable[..., object]
) -> None:
    """A Redis user may be refused INFO (ACL `-info`, as in `-@dangerous`): events still go to Redis,
    not to the spool, and a lost memory (no mark) is still noticed."""
    config = make_config()
    admin = redis.Redis.from_url(config.settings.redis.url)
    user = f"hookyard-{os.getpid()}"
    admin.execute_command("ACL", "SETUSER", user, "on", ">secret", "~*", "&*", "+@all", "-info")
    limited_url = config.settings.redis.url.replace("redis://", f"redis://{user}:secret@", 1)
    try:
        limited = make_config(redis={"url": limited_url})
        base = server_for(limited)
        first = _post(base)
        assert first.status_code == 202
        assert first.json()["warnings"] == {}, "queued in Redis, not spooled"
        worker_for(limited, Registry()).drain()  # type: ignore[attr-defined]
        admin.delete("hookyard:fp:gxm", "hookyard:fp-complete")
        again = _post(base)
        assert again.status_code == 200, again.text
        assert again.json()["data"]["id"] == first.json()["data"]["id"]
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


def test_a_redelivery_of_a_stored_event_while_redis_is_down_gets_the_first_id_from_the_spool_path(
    make_config: ConfigFactory,
    killable_redis: KillableRedis,
    server_for: Callable[..., str],
    worker_for: Callable[..., object],
) -> None:
    """The spool only knows what it holds; the database is asked about the rest, so a vendor retrying
    during a Redis outage is not given a second id for an event stored before it."""
    config = make_config(redis={"url": killable_redis.url})
    base = server_for(config)
    first = _post(base)
    worker_for(config, Registry()).drain()  # type: ignore[attr-defined]
    killable_redis.kill()

    again = _post(base)
    assert again.status_code == 200, again.text
    assert again.json()["data"] == {"id": first.json()["data"]["id"], "status": "queued", "duplicate": True}
