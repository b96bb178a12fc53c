"""structlog set-up: JSON lines in production, key=value in dev, one call per process.

One stream: our own lines go through structlog; the standard library's loggers
(uvicorn, rq, alembic, SQLAlchemy, anything a handler uses) get one root
handler whose `structlog.stdlib.ProcessorFormatter` renders their records with
the same processors, so in production every line on stderr is one JSON object.
`request_id` / `event_id` are bound with contextvars at the boundaries (an
ingest request, an API request, a worker job, a delivery), so a stdlib line
written inside one carries them too. Secrets and whole payloads are never
passed to a logger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

from schemas.settings import LogSettings

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

STDLIB_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "rq", "alembic", "sqlalchemy")
"""Libraries that set up handlers of their own: theirs are removed so their records reach ours."""
QUIET = {"rq.worker": logging.WARNING, "rq.queue": logging.WARNING, "rq.scheduler": logging.WARNING}
"""RQ logs every job at INFO; our own `events_stored` / delivery lines say more."""
ACCESS_ARGS = 5
"""uvicorn's access record args: client address, method, path, HTTP version, status."""


def _uvicorn_access(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """uvicorn's access record as fields (`client`, `method`, `path`, `status`), not a formatted string."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if getattr(record, "name", "") == "uvicorn.access" and isinstance(args, tuple) and len(args) == ACCESS_ARGS:
        client, method, path, version, status = args
        event.update(event="http_request", client=client, method=method, path=path, http=version, status=status)
    return event


def configure_logging(settings: LogSettings) -> None:
    level = _LEVELS[settings.level]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    tail: list[structlog.types.Processor]
    if settings.format == "json":
        renderer = structlog.processors.JSONRenderer()
        tail = [structlog.processors.format_exc_info, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        tail = [renderer]
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, _uvicorn_access],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
            pass_foreign_args=True,  # uvicorn's access record keeps its fields (see _uvicorn_access)
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(level, logging.INFO))  # DEBUG from every library would drown ours
    for name in STDLIB_LOGGERS:
        library = logging.getLogger(name)
        library.handlers = []
        library.propagate = True
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(max(level, quiet))
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if settings.access else logging.WARNING)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind `request_id`, `event_id`, ... for every log line (ours and stdlib's) inside the block."""
    with structlog.contextvars.bound_contextvars(**values):
        yield
