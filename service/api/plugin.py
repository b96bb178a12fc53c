"""`ApiPlugin`: the read API's start-up and shutdown, and its OpenAPI security schemes."""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin

from service.api.docs import SECURITY_COMPONENTS
from service.api.metrics import install_collector, refresh_forever
from service.api.state import api_state

STOP_TIMEOUT_SECONDS = 5.0


async def start_api(app: Litestar) -> None:
    """Load handler modules (for replay and `/v1/handlers`) and start the metrics refresher."""
    state = api_state(app)
    await asyncio.to_thread(state.load_handlers)
    install_collector(state.settings.redis.queue)
    stop = asyncio.Event()
    runtime = state.runtime
    task = asyncio.create_task(
        refresh_forever(runtime.redis, state.engine, state.settings.redis.queue, stop, runtime.spool)
    )
    app.state.api_stop = stop
    app.state.api_tasks = [task]
    _close_streams_on_signal(state.closing)


def _close_streams_on_signal(closing: threading.Event) -> None:
    """Chain SIGTERM/SIGINT so open streams end first; uvicorn's own handler still runs.

    Uvicorn waits for open responses before the lifespan shutdown, so an
    `on_shutdown` hook would come too late for endless streams. Only in the
    main thread (a test client's portal thread cannot set signal handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
            closing.set()
            previous(number, frame)

        signal.signal(signum, handler)


async def stop_api(app: Litestar) -> None:
    state = app.state.get("api")
    if state is not None:
        state.closing.set()
    stop: asyncio.Event | None = app.state.get("api_stop")
    if stop is not None:
        stop.set()
    tasks = app.state.get("api_tasks", [])
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
    app.state.api_tasks = []


class ApiPlugin(InitPlugin):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_startup.append(start_api)
        app_config.on_shutdown.insert(0, stop_api)  # before the runtime closes Redis and the engine
        if app_config.openapi_config is not None:
            components = app_config.openapi_config.components
            existing = components if isinstance(components, list) else [components]
            app_config.openapi_config.components = [*existing, SECURITY_COMPONENTS]
        return app_config
