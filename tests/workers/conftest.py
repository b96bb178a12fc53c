"""Real-service fixtures for the operator-tool tests (see tests/realservices.py)."""

from tests.realservices import (  # noqa: F401  # fixtures, found by name
    ops_database_url,
    ops_engine,
    ops_postgres_url,
    ops_redis,
    ops_redis_url,
    ops_sqlite_url,
)
