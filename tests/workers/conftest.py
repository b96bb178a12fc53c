"""Real-service fixtures (see tests/realservices.py)."""

from tests.realservices import (  # noqa: F401  # fixtures, found by name
    database_url,
    engine,
    postgres_url,
    redis_client,
    redis_url,
    sqlite_url,
)
