"""Handler plugins: the `@handler` decorator, action patterns, and plugin loading.

A pattern is an action whose parts may be `*` (exactly one part), or a lone
`*` for every action (`schemas.actions`): `PUSH`, `PULL_REQUEST:*`,
`HOOKYARD:DELIVERY:*`, `*:*:UPDATED`. Handlers come from three places, all ending in the
same registry: `@handler` in any imported module, modules named in
`[handlers] modules`, and entry points in the group `hookyard.handlers`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import msgspec

from schemas.actions import HANDLER_NAME, is_pattern, pattern_matches
from schemas.settings import ForwardSettings, HandlerSettings, Settings
from workers.event import Event

ENTRY_POINT_GROUP = "hookyard.handlers"
_NAME = HANDLER_NAME

HandlerFunc = Callable[[Event], Any]
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

    def matches(self, action: str) -> bool:
        return any(pattern_matches(pattern, action) for pattern in self.patterns)


class HandlerInfo(msgspec.Struct, frozen=True):
    """A handler as `hookyard handlers` and `GET /v1/handlers` show it."""

    name: str
    patterns: list[str]
    max_attempts: int
    timeout_seconds: float
    module: str = ""


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
    ) -> Callable[[F], F]:
        patterns = tuple(check_pattern(p) for p in (pattern, *more_patterns))
        if max_attempts is not None and max_attempts < 1:
            raise HandlerError("max_attempts must be at least 1")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise HandlerError("timeout_seconds must be positive")

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

    def describe(self, default_max_attempts: int, default_timeout: float) -> list[HandlerInfo]:
        return [
            HandlerInfo(
                name=spec.name,
                patterns=list(spec.patterns),
                max_attempts=spec.max_attempts or default_max_attempts,
                timeout_seconds=spec.timeout_seconds or default_timeout,
                module=spec.module,
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
