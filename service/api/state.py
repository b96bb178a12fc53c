"""What the read API keeps per process, built at start-up (or on first use).

The RQ queue used by replay is synchronous and lazy (no Redis connection
until the first replay) and is only touched from worker threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

import redis
import structlog
from litestar.params import Dependency
from rq import Queue
from sqlalchemy.engine import Engine

from schemas.settings import Settings
from service.api.auth import KeyRing
from service.api.ratelimit import RateLimiter
from service.runtime import Runtime
from workers.registry import REGISTRY, HandlerError, Registry
from workers.serializer import JSONSerializer

log = structlog.get_logger("hookyard.api")


@dataclass
class ApiState:
    runtime: Runtime
    keys: KeyRing
    limiter: RateLimiter
    registry: Registry
    _queue: Queue | None = None
    _redis: redis.Redis | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)
    """Set when the server is stopping: live streams end so shutdown does not wait on them."""

    @classmethod
    def build(cls, runtime: Runtime, registry: Registry = REGISTRY) -> ApiState:
        return cls(
            runtime=runtime,
            keys=KeyRing.from_settings(runtime.settings),
            limiter=RateLimiter(runtime.redis),
            registry=registry,
        )

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    def queue(self) -> Queue:
        """The RQ queue for replays (sync; call from a thread)."""
        with self._lock:
            if self._queue is None:
                timeout = self.settings.redis.socket_timeout_seconds
                self._redis = redis.Redis.from_url(
                    self.settings.redis.url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
                self._queue = Queue(self.settings.redis.queue, connection=self._redis, serializer=JSONSerializer)
            return self._queue

    def sync_redis(self) -> redis.Redis:
        self.queue()
        assert self._redis is not None
        return self._redis

    def load_handlers(self) -> None:
        """Import configured handler modules one by one; a broken one is a warning, not an outage."""
        for module in self.settings.handlers.modules:
            try:
                self.registry.load([module], use_entry_points=False)
            except HandlerError as exc:
                log.warning("handler_module_not_loaded", module=module, error=str(exc)[:300])
        try:
            self.registry.load([], use_entry_points=True)
        except HandlerError as exc:
            log.warning("handler_entry_point_not_loaded", error=str(exc)[:300])

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None
            self._queue = None


def api_state(app: Any) -> ApiState:
    """The app's `ApiState`, built on first use when start-up hooks did not run (tools, tests)."""
    state: ApiState | None = app.state.get("api")
    if state is None:
        state = ApiState.build(app.state.runtime)
        app.state.api = state
    return state


Api = Annotated[ApiState, Dependency(skip_validation=True)]
"""How a route asks for the state: injected as `api`, never validated as input."""
