"""Group commit on the consumer side: events join a store job still waiting in the queue."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import msgspec
import redis
import redis.asyncio as aioredis
from rq import Queue

from schemas.ids import new_event_id
from schemas.wire import QueuedEvent
from service.ingest.enqueue import EventQueue
from service.ingest.spool import Spool
from tests.conftest import gxm_body
from workers.shared.defaults import MAX_JOB_BYTES
from workers.shared.serializer import JSONSerializer

QUEUE = "hookyard"


def event(n: int) -> QueuedEvent:
    body = gxm_body(payload={"n": n}, sent_at=1_700_000_000)
    return QueuedEvent(
        id=new_event_id(),
        source="gxm",
        fingerprint=hashlib.sha256(body).hexdigest()[:32],
        received_at_us=1_700_000_000_000_000,
        request_id=f"r{n}",
        body=body.decode(),
    )


def enqueue(redis_url: str, tmp_path: Path, batches: list[list[QueuedEvent]], max_job_events: int = 500) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            queue = EventQueue(client, QUEUE, Spool(tmp_path / "spool.db"), max_job_events)
            for batch in batches:
                assert await queue.enqueue(batch) == [""] * len(batch)
        finally:
            await client.aclose()

    asyncio.run(run())


def queued_events(client: redis.Redis) -> list[int]:
    queue = Queue(QUEUE, connection=client, serializer=JSONSerializer)
    return [len(job.args[0]) for job in queue.get_jobs()]


def test_waiting_job_takes_new_events_up_to_the_cap(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> None:
    enqueue(redis_url, tmp_path, [[event(1)], [event(2), event(3)], [event(4)], [event(5), event(6)]], max_job_events=4)

    assert queued_events(redis_client) == [4, 2]
    job = Queue(QUEUE, connection=redis_client, serializer=JSONSerializer).get_jobs()[0]
    assert job.func_name == "workers.jobs.store_batch"
    assert job.description == "store 4 event(s)"


def test_a_taken_job_is_never_extended(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> None:
    enqueue(redis_url, tmp_path, [[event(1)]])
    queue = Queue(QUEUE, connection=redis_client, serializer=JSONSerializer)
    taken = Queue.dequeue_any([queue], None, connection=redis_client, serializer=JSONSerializer)
    assert taken is not None

    enqueue(redis_url, tmp_path, [[event(2)]])

    taken[0].refresh()
    assert len(taken[0].args[0]) == 1
    assert queued_events(redis_client) == [1]


def test_a_job_rq_saved_again_is_left_alone(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> None:
    enqueue(redis_url, tmp_path, [[event(1)]])
    queue = Queue(QUEUE, connection=redis_client, serializer=JSONSerializer)
    job = queue.get_jobs()[0]
    job.save()  # what a retry does: RQ writes `data` compressed

    enqueue(redis_url, tmp_path, [[event(2)]])

    assert queued_events(redis_client) == [1, 1]


def test_a_waiting_job_stops_taking_events_once_it_is_32_kib(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Each append rewrites the job's data in Redis: past APPEND_BELOW_BYTES a new job is cheaper."""
    big = [msgspec.structs.replace(e, body=e.body + " " * 10_000) for e in (event(n) for n in range(6))]  # ~10 KB

    enqueue(redis_url, tmp_path, [[e] for e in big])

    assert queued_events(redis_client) == [4, 2]  # 10, 20, 30 KB take one more; at 40 KB it is full


def _big(n: int, size: int) -> QueuedEvent:
    return msgspec.structs.replace(event(n), body='{"pad": "' + "x" * size + '"}', whole_body=True)


def test_every_new_job_is_capped_by_bytes_so_256_bodies_of_1_mib_never_make_one_job(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """One group commit of 256 x 1 MiB: each event travels alone (a lone oversized event is one job of
    its own), never a 256 MiB job that gets a worker OOM-killed on every retry."""
    enqueue(redis_url, tmp_path, [[_big(n, 1024 * 1024) for n in range(256)]])
    assert queued_events(redis_client) == [1] * 256


def test_new_jobs_are_capped_by_events_and_by_64_kib(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> None:
    enqueue(redis_url, tmp_path, [[event(n) for n in range(250)]], max_job_events=100)
    assert queued_events(redis_client) == [100, 100, 50]
    redis_client.flushdb()

    enqueue(redis_url, tmp_path, [[_big(n, 10_000) for n in range(40)]])
    sizes = [
        len(redis_client.hget(f"rq:job:{job_id.decode()}", "data") or b"")
        for job_id in redis_client.lrange("rq:queue:hookyard", 0, -1)
    ]
    assert len(sizes) > 1
    assert max(sizes) <= MAX_JOB_BYTES
    assert sum(queued_events(redis_client)) == 40


def test_a_waiting_job_takes_only_what_fits_and_the_rest_starts_new_jobs(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    enqueue(redis_url, tmp_path, [[event(0)], [event(n) for n in range(1, 10)]], max_job_events=4)
    assert queued_events(redis_client) == [4, 4, 2]
    queue = Queue(QUEUE, connection=redis_client, serializer=JSONSerializer)
    order = [msgspec.convert(item, QueuedEvent).request_id for job in queue.get_jobs() for item in job.args[0]]
    assert order == [f"r{n}" for n in range(10)]
