"""structlog set-up: JSON lines in production, key=value in dev, one call per process.

Every line about an event carries `event_id` and `request_id` (bound by the
caller); secrets and whole payloads are never passed to a logger.
"""

from __future__ import annotations

import logging
import sys

import structlog

from schemas.settings import LogSettings

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(settings: LogSettings) -> None:
    level = _LEVELS[settings.level]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors: list[structlog.types.Processor]
    if settings.format == "json":
        processors = [
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors = [*shared, structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # RQ and uvicorn log through the standard library: keep them terse and on stderr.
    logging.basicConfig(level=max(level, logging.INFO), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    logging.getLogger("rq.queue").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
