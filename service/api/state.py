"""What the read API keeps per process, built at start-up (or on first use).

Redis, the RQ queue and the engine are the process's `Connections` (through
the runtime); the sync ones are touched only from worker threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from litestar.params import Dependency
from sqlalchemy.engine import Engine

from schemas.settings import Settings
from service.api.auth import KeyRing
from service.api.stream_hub import StreamHub
from service.limiter import Limiter
from service.runtime import Runtime
from workers.registry import REGISTRY, HandlerError, Registry
from workers.shared.connections import Connections

log = structlog.get_logger("hookyard.api")


@dataclass
class ApiState:
    runtime: Runtime
    keys: KeyRing
    limiter: Limiter
    registry: Registry
    closing: threading.Event
    """Set when the server is stopping: live streams end so shutdown does not wait on them."""
    streams: StreamHub
    """Every live stream of this process, fed by one poller."""

    @classmethod
    def build(cls, runtime: Runtime, registry: Registry = REGISTRY) -> ApiState:
        closing = threading.Event()
        server = runtime.settings.server
        return cls(
            runtime=runtime,
            keys=KeyRing.from_settings(runtime.settings),
            limiter=Limiter(runtime.redis, "api"),
            registry=registry,
            closing=closing,
            streams=StreamHub(
                runtime.engine,
                closing,
                max_streams=server.max_streams,
                max_per_key=server.max_streams_per_key,
                max_bytes=server.max_page_bytes,
            ),
        )

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def connections(self) -> Connections:
        return self.runtime.connections

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    def load_handlers(self) -> None:
        """Load configured handlers; a broken module is a warning here, not an outage."""

        def warn(exc: HandlerError) -> None:
            log.warning("handler_module_not_loaded", error=str(exc)[:300])

        self.registry.load_configured(self.settings, on_error=warn)


def api_state(app: Any) -> ApiState:
    """The app's `ApiState`, built on first use when start-up hooks did not run (tools, tests)."""
    state: ApiState | None = app.state.get("api")
    if state is None:
        state = ApiState.build(app.state.runtime)
        app.state.api = state
    return state


Api = Annotated[ApiState, Dependency(skip_validation=True)]
"""How a route asks for the state: injected as `api`, never validated as input."""
