"""Handler plugins: the `@handler` decorator, action patterns, and plugin loading.

A pattern is an action whose parts may be `*` (exactly one part), or a lone
`*` for every action (`schemas.actions`): `PUSH`, `PULL_REQUEST:*`,
`HOOKYARD:DELIVERY:*`, `*:*:UPDATED`. Handlers come from three places, all ending in the
same registry: `@handler` in any imported module, modules named in
`[handlers] modules`, and entry points in the group `hookyard.handlers`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import msgspec

from schemas.actions import HANDLER_NAME, is_pattern, pattern_matches
from schemas.settings import ForwardSettings, HandlerSettings, Settings
from workers.event import Event

ENTRY_POINT_GROUP = "hookyard.handlers"
MAX_KEY_CHARS = 255
"""`deliveries.ordering_key`'s length."""
_NAME = HANDLER_NAME

HandlerFunc = Callable[[Event], Any]
OrderingKey = Callable[[Event], "str | int | None"]
F = TypeVar("F", bound=HandlerFunc)


class HandlerError(Exception):
    """A handler declared wrongly (bad pattern, clashing name) or a plugin that fails to load."""


def check_pattern(pattern: str) -> str:
    if not is_pattern(pattern):
        raise HandlerError(
            f"bad action pattern {pattern!r}: use parts of A-Z0-9_ joined with ':', '*' for one part, or '*'"
        )
    return pattern


@dataclass(frozen=True)
class HandlerSpec:
    name: str
    patterns: tuple[str, ...]
    func: HandlerFunc
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    is_async: bool = field(default=False)
    module: str = ""
    ordering_key: OrderingKey | None = None
    """Deliveries sharing a key run one at a time, in `sent_at` order (README "Ordering keys")."""
    skip_stale: bool = False
    """With `ordering_key`: an event sent before one already succeeded for its key is `skipped`."""
    payload: type[msgspec.Struct] | None = None
    """The Struct `event.data` is converted to; a payload that does not convert is dead at once."""

    def matches(self, action: str) -> bool:
        return any(pattern_matches(pattern, action) for pattern in self.patterns)

    def key_of(self, event: Event) -> str | None:
        """The event's ordering key: a string, an integer's digits, or `None`; raises what the function
        raises, or `TypeError` for any other value. A key longer than the column is kept as its SHA-256."""
        if self.ordering_key is None:
            return None
        key = self.ordering_key(event)
        if key is None:
            return None
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str):
            raise TypeError(f"ordering_key returned {type(key).__name__}, not a string")
        return key if len(key) <= MAX_KEY_CHARS else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class HandlerInfo(msgspec.Struct, frozen=True):
    """A handler as `hookyard handlers` and `GET /v1/handlers` show it."""

    name: str
    patterns: list[str]
    max_attempts: int
    timeout_seconds: float
    module: str = ""
    ordered: bool = False
    skip_stale: bool = False
    payload: str | None = None
    """The `payload=` Struct's name."""
    paused: bool = False
    """Paused (`POST /v1/handlers/{name}/pause`): its deliveries wait."""


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[str, HandlerSpec] = {}
        self._loaded_modules: set[str] = set()

    def add(self, spec: HandlerSpec) -> None:
        existing = self._handlers.get(spec.name)
        if existing is not None and existing.func is not spec.func:
            if _same_function(existing.func, spec.func):
                self._handlers[spec.name] = spec  # a module imported twice (reload), same code
                return
            raise HandlerError(f"handler name {spec.name!r} is taken by {existing.module}; give one of them name=...")
        self._handlers[spec.name] = spec

    def handler(
        self,
        pattern: str,
        *more_patterns: str,
        name: str | None = None,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        ordering_key: OrderingKey | None = None,
        skip_stale: bool = False,
        payload: type[msgspec.Struct] | None = None,
    ) -> Callable[[F], F]:
        patterns = tuple(check_pattern(p) for p in (pattern, *more_patterns))
        if max_attempts is not None and max_attempts < 1:
            raise HandlerError("max_attempts must be at least 1")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise HandlerError("timeout_seconds must be positive")
        if ordering_key is not None and not callable(ordering_key):
            raise HandlerError("ordering_key must be a function of the event, e.g. lambda e: e.payload['id']")
        if skip_stale and ordering_key is None:
            raise HandlerError("skip_stale needs an ordering_key: staleness is per key")
        if payload is not None and not (isinstance(payload, type) and issubclass(payload, msgspec.Struct)):
            raise HandlerError(f"payload= must be a msgspec.Struct class, got {payload!r}")

        def register(func: F) -> F:
            handler_name = name or f"{func.__module__}.{func.__qualname__}"
            if not _NAME.match(handler_name):
                raise HandlerError(f"bad handler name {handler_name!r}")
            self.add(
                HandlerSpec(
                    name=handler_name,
                    patterns=patterns,
                    func=func,
                    max_attempts=max_attempts,
                    timeout_seconds=timeout_seconds,
                    is_async=inspect.iscoroutinefunction(func),
                    module=func.__module__,
                    ordering_key=ordering_key,
                    skip_stale=skip_stale,
                    payload=payload,
                )
            )
            return func

        return register

    def get(self, name: str) -> HandlerSpec | None:
        return self._handlers.get(name)

    def all(self) -> list[HandlerSpec]:
        return sorted(self._handlers.values(), key=lambda spec: spec.name)

    def matching(self, action: str) -> list[HandlerSpec]:
        return [spec for spec in self.all() if spec.matches(action)]

    def names(self) -> set[str]:
        return set(self._handlers)

    def clear(self) -> None:
        self._handlers.clear()
        self._loaded_modules.clear()

    def load_configured(self, settings: Settings, *, on_error: Callable[[HandlerError], None] | None = None) -> None:
        """Import `[handlers] modules`, then the `hookyard.handlers` entry points, then add the
        `[[forwards]]` blocks: the one policy every process uses. A module or entry point that fails,
        or a forward whose name a handler has, raises `HandlerError`, or, with `on_error` (the API,
        `hookyard replay`), is reported there and the rest still load."""

        def attempt(load: Callable[[], None]) -> None:
            try:
                load()
            except HandlerError as exc:
                if on_error is None:
                    raise
                on_error(exc)

        for module in settings.handlers.modules:
            attempt(partial(self._import, module, f"[handlers] modules: {module}"))
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            attempt(partial(self._load_entry_point, entry))
        for forward in settings.forwards:
            attempt(partial(self._add_forward, forward, settings.handlers))

    def _add_forward(self, forward: ForwardSettings, handlers: HandlerSettings) -> None:
        from workers.forward import MODULE, forward_spec  # noqa: PLC0415 - it imports this module (HandlerSpec)

        existing = self.get(forward.name)
        if existing is not None and existing.module != MODULE:
            raise HandlerError(f"[[forwards]] {forward.name!r}: the name is taken by a handler in {existing.module}")
        self.add(forward_spec(forward, handlers))

    def _load_entry_point(self, entry: EntryPoint) -> None:
        try:
            loaded = entry.load()
        except Exception as exc:
            raise HandlerError(f"entry point {entry.name!r} ({entry.value}) failed: {exc}") from exc
        if isinstance(loaded, HandlerSpec):
            self.add(loaded)

    def _import(self, module: str, origin: str) -> None:
        if module in self._loaded_modules:
            return
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise HandlerError(f"{origin}: import failed: {type(exc).__name__}: {exc}") from exc
        self._loaded_modules.add(module)

    def describe(
        self, default_max_attempts: int, default_timeout: float, paused: Collection[str] = ()
    ) -> list[HandlerInfo]:
        return [
            HandlerInfo(
                name=spec.name,
                patterns=list(spec.patterns),
                max_attempts=spec.max_attempts or default_max_attempts,
                timeout_seconds=spec.timeout_seconds or default_timeout,
                module=spec.module,
                ordered=spec.ordering_key is not None,
                skip_stale=spec.skip_stale,
                payload=None if spec.payload is None else spec.payload.__name__,
                paused=spec.name in paused,
            )
            for spec in self.all()
        ]


def _same_function(a: HandlerFunc, b: HandlerFunc) -> bool:
    return getattr(a, "__module__", None) == getattr(b, "__module__", None) and getattr(
        a, "__qualname__", None
    ) == getattr(b, "__qualname__", None)


REGISTRY = Registry()
"""The process-wide registry that `@handler` writes to."""

handler = REGISTRY.handler
