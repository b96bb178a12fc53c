"""Workers: the RQ jobs that store events and run handler plugins.

The handler API lives here: `from workers import handler, Event, PermanentError`.
"""

from workers.event import Event, PermanentError
from workers.registry import REGISTRY, HandlerError, handler

__all__ = ["REGISTRY", "Event", "HandlerError", "PermanentError", "handler"]
