"""Redis's de-duplication memory, and making it whole again from the database.

Ingest answers "duplicate" from Redis (`hookyard:fp:<source>`: fingerprint ->
first event id); the database's unique `(source, fingerprint)` is the record.
A Redis server that did not see every write — restarted without its data,
failed over to a lagging replica, restored from an old backup — lacks the
fingerprints of events already stored, and a re-delivery would be queued
under a new id. `COMPLETE_KEY` holds the `run_id` of the Redis server whose
memory was last rebuilt from the database (the enqueue script compares it
with its own server's, read in the same atomic call): while they differ,
ingest asks the database about every event (`stored_ids`) and one API
process copies every stored fingerprint back (`rebuild`).
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence

import redis
from redis.commands.core import Script
from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Connection, Engine

from schemas.tables import EventRow

FINGERPRINT_KEY = "hookyard:fp:{source}"
"""Redis hash per source: field = event fingerprint (hex), value = event id."""

COMPLETE_KEY = "hookyard:fp-complete"
"""The `run_id` of the Redis server whose fingerprint memory holds every stored event's."""

REBUILD_LOCK_KEY = "hookyard:fp-rebuilding"
REBUILD_LOCK_SECONDS = 60
"""The rebuilder renews its lock after each page; a rebuilder that died frees it within this."""

REBUILD_PAGE = 5000

Key = tuple[str, str]
"""(source, fingerprint)."""

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

# Delete a fingerprint only while it still names the deleted event: a newer
# event that took the same fingerprint keeps its de-duplication.
HDEL_IF_OWNED = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def repoint_args(rows: Iterable[tuple[str, str, str, str]]) -> dict[str, list[str]]:
    """(source, fingerprint, id Redis names now, first event id) rows as `HSET_IF_OWNED` arguments per key."""
    by_key: defaultdict[str, list[str]] = defaultdict(list)
    for source, fingerprint, named, first in rows:
        by_key[FINGERPRINT_KEY.format(source=source)].extend((fingerprint, named, first))
    return by_key


def repoint_fingerprints(client: redis.Redis, rows: Sequence[tuple[str, str, str, str]]) -> int:
    """After Redis lost a fingerprint, a re-delivery was queued under a new id and the database kept the
    first: point the fingerprint at the first id, so later re-deliveries get it again."""
    script = client.register_script(HSET_IF_OWNED)
    return sum(int(script(keys=[key], args=args)) for key, args in repoint_args(rows).items())


def forget_fingerprints(client: redis.Redis, rows: Sequence[tuple[str, str, str]]) -> int:
    """Delete (event id, source, fingerprint) entries that still name their event; returns how many went."""
    return forget_with(client.register_script(HDEL_IF_OWNED), rows)


def forget_with(hdel: Script, rows: Iterable[tuple[str, str, str]]) -> int:
    by_key: defaultdict[str, list[str]] = defaultdict(list)
    for event_id, source, fingerprint in rows:
        by_key[FINGERPRINT_KEY.format(source=source)].extend((fingerprint, event_id))
    return sum(int(hdel(keys=[key], args=pairs)) for key, pairs in by_key.items())


def stored_ids(engine: Engine, keys: Iterable[Key]) -> dict[Key, str]:
    """The id the database holds under each (source, fingerprint) it holds: one indexed query."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    query = select(EventRow.source, EventRow.fingerprint, EventRow.id).where(
        tuple_(EventRow.source, EventRow.fingerprint).in_(wanted)
    )
    with engine.connect() as connection:
        return {(source, fingerprint): event_id for source, fingerprint, event_id in connection.execute(query)}


def rebuild(engine: Engine, client: redis.Redis, run_id: str, stop: threading.Event | None = None) -> bool:
    """Copy every stored event's fingerprint into Redis (the database's id wins), then mark the memory
    of server `run_id` complete. One process at a time (a lock in Redis); False if another holds it or
    `stop` was set. A second pass takes what workers stored meanwhile (by `seq`); after each page,
    fingerprints of events a purge deleted meanwhile are taken out again."""
    token = uuid.uuid4().hex
    if not client.set(REBUILD_LOCK_KEY, token, nx=True, ex=REBUILD_LOCK_SECONDS):
        return False
    hdel = client.register_script(HDEL_IF_OWNED)
    try:
        with engine.connect() as connection:
            last = _copy(connection, client, hdel, 0, stop)
            if last is None:
                return False
            caught_up = _copy(connection, client, hdel, last, stop)  # stored while the first pass ran
            if caught_up is None:
                return False
        client.set(COMPLETE_KEY, run_id)
        return True
    finally:
        client.register_script(_RELEASE_LOCK)(keys=[REBUILD_LOCK_KEY], args=[token])


def _copy(
    connection: Connection, client: redis.Redis, hdel: Script, after: int, stop: threading.Event | None
) -> int | None:
    """Events with `seq > after`, page by page; the highest `seq` seen, or None when stopped."""
    last = after
    high = connection.scalar(select(func.max(EventRow.seq))) or 0
    query = (
        select(EventRow.seq, EventRow.id, EventRow.source, EventRow.fingerprint)
        .where(EventRow.seq > after, EventRow.seq <= high)
        .order_by(EventRow.seq)
    )
    for page in connection.execution_options(yield_per=REBUILD_PAGE).execute(query).partitions():
        if stop is not None and stop.is_set():
            return None
        pipe = client.pipeline(transaction=False)
        for _seq, event_id, source, fingerprint in page:
            pipe.hset(FINGERPRINT_KEY.format(source=source), fingerprint, event_id)
        pipe.expire(REBUILD_LOCK_KEY, REBUILD_LOCK_SECONDS)
        pipe.execute()
        ids = [event_id for _, event_id, _, _ in page]
        with connection.engine.connect() as fresh:  # a purge may have deleted some since the page was read
            still = set(fresh.scalars(select(EventRow.id).where(EventRow.id.in_(ids))))
        forget_with(hdel, [(event_id, source, fp) for _, event_id, source, fp in page if event_id not in still])
        last = page[-1][0]
    return max(last, high)
