"""CLI tests drive a real in-process app and worker: the read API's fixtures, pinned here too."""

from tests.service.api.conftest import app, client, database_url, redis_url

__all__ = ["app", "client", "database_url", "redis_url"]
