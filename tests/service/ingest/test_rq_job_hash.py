"""Ingest's Lua script writes RQ jobs by hand: field by field, they must be what `Queue.enqueue` writes.

`rq` is pinned to the minor version this was checked against (pyproject.toml); when a new
RQ changes its job hash, this test names the field that moved.
"""

from __future__ import annotations

import contextlib
import zlib

import msgspec
import redis
from rq import Queue
from rq.job import Job

from schemas.wire import QueuedEvent
from service.ingest.enqueue import ENQUEUE_LUA, script_args
from workers.shared.defaults import STORE_BATCH, job_options
from workers.shared.serializer import JSONSerializer

OURS_ONLY = {"hookyard_events"}
"""How many events our store job holds (ingest appends to a waiting job); RQ ignores unknown fields."""
TIMES = {"created_at", "enqueued_at"}


def _event(n: int) -> QueuedEvent:
    return QueuedEvent(
        id=f"01TESTEVENT{n:015d}", source="gxm", fingerprint=f"fp{n}", received_at_us=n, request_id=f"r{n}", body="{}"
    )


def _data(raw: bytes) -> object:
    with contextlib.suppress(zlib.error):
        raw = zlib.decompress(raw)  # RQ compresses `data`; ours is plain JSON, which RQ also reads
    return msgspec.json.decode(raw)


def test_the_lua_job_hash_matches_what_rq_enqueue_writes(redis_client: redis.Redis):
    events = [_event(1), _event(2)]
    args = script_args("hookyard", events)
    redis_client.register_script(ENQUEUE_LUA)(args=args)
    ours = {k.decode(): v for k, v in redis_client.hgetall(f"rq:job:{args[3]}").items()}

    queue = Queue("hookyard", connection=redis_client, serializer=JSONSerializer)
    theirs_job = queue.enqueue(
        STORE_BATCH,
        [msgspec.to_builtins(e) for e in events],
        **job_options(f"store {len(events)} event(s)", store=True),
    )
    theirs = {k.decode(): v for k, v in redis_client.hgetall(f"rq:job:{theirs_job.id}").items()}

    assert set(ours) - OURS_ONLY == set(theirs), "fields differ"
    for field in sorted(theirs):
        if field in TIMES:
            assert len(ours[field]) == len(theirs[field]), field
            assert ours[field].endswith(b"Z"), field
        elif field == "data":
            assert _data(ours[field]) == _data(theirs[field]), field
        elif field == "retry_intervals":
            assert msgspec.json.decode(ours[field]) == msgspec.json.decode(theirs[field]), field
        else:
            assert ours[field] == theirs[field], field
    assert ours["hookyard_events"] == b"2"


def test_rq_reads_the_lua_job_as_its_own(redis_client: redis.Redis):
    args = script_args("hookyard", [_event(3)])
    redis_client.register_script(ENQUEUE_LUA)(args=args)
    job_id = args[3]
    job = Job.fetch(job_id, connection=redis_client, serializer=JSONSerializer)
    assert job.func_name == STORE_BATCH
    assert job.args == [[msgspec.to_builtins(_event(3))]]
    assert job.kwargs == {}
    assert job.get_status() == "queued"
    assert job.origin == "hookyard"
    assert job.retries_left == job_options("")["retry"].max
    assert job.retry_intervals == job_options("")["retry"].intervals
    assert job.timeout == job_options("")["job_timeout"]
    assert job.enqueued_at is not None
    assert job.created_at is not None
    assert Queue("hookyard", connection=redis_client, serializer=JSONSerializer).job_ids == [job_id]
