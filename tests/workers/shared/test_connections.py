"""Redis URLs: plain ones against real Redis; Sentinel URLs parsed and wired (no sentinel here)."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import redis
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.sentinel import SentinelConnectionPool
from sqlalchemy import text

from schemas.settings import DatabaseSettings
from workers.shared.connections import (
    SentinelURL,
    async_redis_from_url,
    make_engine,
    parse_sentinel_url,
    redis_from_url,
)


def test_plain_url_reaches_real_redis(redis_url):
    client = redis_from_url(redis_url, socket_timeout=2.0)
    key = f"hookyard:test:{uuid.uuid4().hex}"
    try:
        client.set(key, b"v", ex=60)
        assert client.get(key) == b"v"  # bytes, as RQ needs
    finally:
        client.delete(key)
        client.close()


def test_async_plain_url_reaches_real_redis(redis_url):
    async def roundtrip() -> bytes | None:
        client = async_redis_from_url(redis_url, socket_timeout=2.0)
        key = f"hookyard:test:{uuid.uuid4().hex}"
        try:
            await client.set(key, b"a", ex=60)
            return await client.get(key)
        finally:
            await client.delete(key)
            await client.aclose()

    assert asyncio.run(roundtrip()) == b"a"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_fails_fast_instead_of_hanging():
    client = redis_from_url(f"redis://127.0.0.1:{_closed_port()}/0", socket_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        client.ping()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/2",
            SentinelURL((("10.0.0.1", 26379), ("10.0.0.2", 26380)), "mymaster", 2),
        ),
        ("redis+sentinel://sentinel/mymaster", SentinelURL((("sentinel", 26379),), "mymaster", 0)),
        (
            "redis+sentinel://s3cr%40t@a:1,b/svc/0",
            SentinelURL((("a", 1), ("b", 26379)), "svc", 0, None, "s3cr@t"),
        ),
        (
            "redis+sentinel://app:pw@[::1]:26379/svc/1?sentinel_password=sp",
            SentinelURL((("::1", 26379),), "svc", 1, "app", "pw", "sp"),
        ),
        ("redis+sentinel://:pw@h/svc", SentinelURL((("h", 26379),), "svc", 0, None, "pw")),
    ],
)
def test_sentinel_urls_parse(url, expected):
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+sentinel://h:26379", "service_name"),
        ("redis+sentinel://h/svc/x", "database must be a number"),
        ("redis+sentinel://h:port/svc", "not a number"),
        ("redis+sentinel://h,,k/svc", "at least one host"),
        ("redis+sentinel://h/svc?ssl=1", "unknown option"),
        ("redis://h/0", "not a redis\\+sentinel"),
    ],
)
def test_bad_sentinel_urls_name_the_problem(url, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_sentinel_url(url)


def test_sentinel_url_gives_a_client_that_follows_the_named_master():
    client = redis_from_url("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.2/mymaster/3", socket_timeout=0.5)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["password"] == "pw"
    assert [
        (c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
        for c in pool.sentinel_manager.sentinels
    ] == [("127.0.0.1", 26379), ("127.0.0.2", 26379)]


def test_async_sentinel_url_gives_an_async_client():
    client = async_redis_from_url("redis+sentinel://127.0.0.1/mymaster", socket_timeout=0.5)
    assert isinstance(client.connection_pool, AsyncSentinelPool)
    assert client.connection_pool.service_name == "mymaster"


def test_sentinel_without_any_sentinel_up_errors_within_the_timeout():
    client = redis_from_url(f"redis+sentinel://127.0.0.1:{_closed_port()}/mymaster", socket_timeout=0.5)
    with pytest.raises(redis.ConnectionError):  # MasterNotFoundError is a ConnectionError
        client.ping()


def test_the_sqlite_store_commits_with_synchronous_full(sqlite_url):
    """CONTRACT section 9: every commit of the SQLite store is fsynced (2 = FULL; NORMAL, 1, is not
    durable across a power cut in WAL mode). Read through a connection the production engine made."""
    engine = make_engine(DatabaseSettings(url=sqlite_url))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA synchronous")).scalar_one() == 2
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    finally:
        engine.dispose()
