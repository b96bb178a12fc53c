"""Redis's de-duplication memory, and making it whole again from the database.

Ingest answers "duplicate" from Redis (`hookyard:fp:<source>`: fingerprint ->
first event id); the database's unique `(source, fingerprint)` is the record.
A Redis server that did not see every write — restarted without its data,
failed over to a lagging replica, restored from an old backup — lacks the
fingerprints of events already stored, and a re-delivery would be queued
under a new id. `COMPLETE_KEY` holds the `run_id` of the Redis server whose
memory was last rebuilt from the database: while it names another server,
ingest asks the database about every new fingerprint (`first_ids`) and one
API process copies every stored fingerprint back (`rebuild`).
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence

import redis
from sqlalchemy import select, tuple_
from sqlalchemy.engine import Engine

from schemas.tables import EventRow

FINGERPRINT_KEY = "hookyard:fp:{source}"
"""Redis hash per source: field = event fingerprint (hex), value = event id."""

COMPLETE_KEY = "hookyard:fp-complete"
"""The `run_id` of the Redis server whose fingerprint memory holds every stored event's."""

REBUILD_LOCK_KEY = "hookyard:fp-rebuilding"
REBUILD_LOCK_SECONDS = 60
"""The rebuilder renews its lock after each page; a rebuilder that died frees it within this."""

REBUILD_PAGE = 5000

# Point a fingerprint at the event the database kept, only while it still names the one it refused.
HSET_IF_OWNED = """
local moved = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    moved = moved + 1
  end
end
return moved
"""


def repoint_args(rows: Sequence[tuple[str, str, str, str]]) -> dict[str, list[str]]:
    """(source, fingerprint, refused event id, first event id) rows as `HSET_IF_OWNED` arguments per key."""
    by_key: defaultdict[str, list[str]] = defaultdict(list)
    for source, fingerprint, refused, first in rows:
        by_key[FINGERPRINT_KEY.format(source=source)].extend((fingerprint, refused, first))
    return by_key


def repoint_fingerprints(client: redis.Redis, rows: Sequence[tuple[str, str, str, str]]) -> int:
    """After Redis lost a fingerprint, a re-delivery was queued under a new id and the database kept the
    first: point the fingerprint at the first id, so later re-deliveries get it again."""
    script = client.register_script(HSET_IF_OWNED)
    return sum(int(script(keys=[key], args=args)) for key, args in repoint_args(rows).items())


def first_ids(engine: Engine, events: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str, str]]:
    """Of (event id, source, fingerprint), those the database already holds under another id, as
    (source, fingerprint, new id, first id) rows: one indexed query for the whole group commit."""
    if not events:
        return []
    wanted = {(source, fingerprint): event_id for event_id, source, fingerprint in events}
    query = select(EventRow.source, EventRow.fingerprint, EventRow.id).where(
        tuple_(EventRow.source, EventRow.fingerprint).in_(list(wanted))
    )
    with engine.connect() as connection:
        found = connection.execute(query).all()
    return [
        (source, fingerprint, wanted[(source, fingerprint)], first)
        for source, fingerprint, first in found
        if first != wanted[(source, fingerprint)]
    ]


def rebuild(engine: Engine, client: redis.Redis, run_id: str, stop: threading.Event | None = None) -> bool:
    """Copy every stored event's fingerprint into Redis (never over one Redis already holds), then mark
    the memory of server `run_id` complete. One process at a time (a lock in Redis); False if another
    holds it or `stop` was set. Events stored meanwhile took their fingerprints at ingest, on this server."""
    token = uuid.uuid4().hex
    if not client.set(REBUILD_LOCK_KEY, token, nx=True, ex=REBUILD_LOCK_SECONDS):
        return False
    try:
        query = select(EventRow.source, EventRow.fingerprint, EventRow.id)
        with engine.connect() as connection:
            result = connection.execution_options(yield_per=REBUILD_PAGE).execute(query)
            for page in result.partitions():
                if stop is not None and stop.is_set():
                    return False
                pipe = client.pipeline(transaction=False)
                for source, fingerprint, event_id in page:
                    pipe.hsetnx(FINGERPRINT_KEY.format(source=source), fingerprint, event_id)
                pipe.expire(REBUILD_LOCK_KEY, REBUILD_LOCK_SECONDS)
                pipe.execute()
        client.set(COMPLETE_KEY, run_id)
        return True
    finally:
        if client.get(REBUILD_LOCK_KEY) in (token, token.encode()):
            client.delete(REBUILD_LOCK_KEY)
