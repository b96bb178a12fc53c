"""Configuration: one TOML file plus `HOOKYARD_<SECTION>_<KEY>` overrides, validated once.

Every mistake stops start-up with a single line that names the key
(`ConfigError`), because a receiver that half-starts loses events.
Secrets may be inline or `env:NAME` / `file:/path` references; they are
resolved here so nothing downstream ever sees a reference.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from schemas.actions import HANDLER_NAME, is_pattern
from schemas.locators import parse_locator
from schemas.presets import DEFAULT_PRESET, PRESETS
from schemas.signatures import DEFAULT_TOLERANCE_SECONDS, SCHEMES, scheme_for
from schemas.signatures.standard_webhooks import StandardWebhooks

CONFIG_ENV = "HOOKYARD_CONFIG"
DEFAULT_CONFIG_PATH = "hookyard.toml"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "sqlite:///var/hookyard.db"
OWN_SOURCE = "hookyard"
"""The source of hookyard's own events (`HOOKYARD:DELIVERY:DEAD`): reserved, never a `[[sources]]` name,
so nobody outside can post into it."""

# Environment variables under HOOKYARD_ that are not settings.
_NOT_SETTINGS = ("HOOKYARD_CONFIG", "HOOKYARD_TEST_")

SourceName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class ConfigError(Exception):
    """A configuration problem, worded as one line that names the key."""


class ServerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 8000
    max_body_bytes: Positive = 1_048_576
    """Larger bodies are refused with 413 while they are read, not after."""
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs whose `X-Forwarded-For` is believed; no other peer's is."""
    body_timeout_seconds: PositiveFloat = 10.0
    """A sender that has not finished its body by then gets 408."""
    spool_path: str = "var/spool.db"
    """The fsync'd file that holds accepted events while Redis is away."""
    max_streams: Positive = 200
    """Live streams (`/v1/stream`, the console's live tail) one API process serves at once; one more: 429."""
    max_streams_per_key: Positive = 10
    """Live streams one API key (or console user) may hold open on one API process; one more: 429."""
    max_page_bytes: Positive = 8_388_608
    """Bytes of payloads and headers one `/v1/events` page holds at most (8 MiB): past it the page ends early
    and `next_cursor` gives the rest, so `limit=1000&select=payload` of 1 MiB payloads never loads 1 GB."""
    metrics_port: Port | None = None
    """`/metrics` is served on this port only (no key; keep it off the internet). Unset: on `port`, behind
    an API key (any role), so the ingest port never shows it to strangers."""


class RedisSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    url: str = DEFAULT_REDIS_URL
    queue: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "hookyard"
    socket_timeout_seconds: PositiveFloat = 2.0
    """Bounds every Redis call so a stopped Redis means spool or 503, never a hang."""
    require_fsync: bool = False
    """Refuse to start `serve` when Redis does not fsync each write before answering (WAITAOF on
    Redis >= 7.2 with AOF on, else `appendfsync always`): a 202 must mean the event is on disk."""


class DatabaseSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    url: str = DEFAULT_DATABASE_URL
    pool_size: Positive = 5


class SourceSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One `[[sources]]` block. `preset` fills every key left empty here (a key set by hand wins);
    after loading, `scheme` and `format` are always set."""

    name: SourceName
    preset: str = DEFAULT_PRESET
    """A name in `schemas.presets.PRESETS`."""
    scheme: str = ""
    """A name in `schemas.signatures.SCHEMES`."""
    format: str = ""
    """`gxm` (the envelope of CONTRACT section 4) or `json` (the whole body is the payload)."""
    action: tuple[str, ...] = ()
    """Locators of the action's parts (`json:<pointer>`, `header:<name>`, `=<literal>`), joined with `:`."""
    event_id: str = ""
    """Locator of the vendor's event id, the de-duplication key; "": the body fingerprint."""
    sent_at: str = ""
    """Locator of the send time (unix seconds); "": the signed timestamp, else the time of receipt."""
    tolerance_seconds: Positive = DEFAULT_TOLERANCE_SECONDS
    """Timestamped schemes refuse a signature further than this from now."""
    secrets: tuple[str, ...] = ()
    allow_ips: tuple[str, ...] = ()
    max_age_seconds: Positive | None = None
    """Refuse events whose `data.sent_at` is older than this (a replay guard)."""
    rate_per_minute: Positive | None = None


class ApiKeySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    name: str
    key: str | None = None
    key_sha256: str | None = None
    role: Literal["read", "admin"] = "read"
    rate_per_minute: Positive = 600


class HandlerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    modules: tuple[str, ...] = ()
    default_max_attempts: Positive = 5
    timeout_seconds: PositiveFloat = 30.0
    retry_base_seconds: PositiveFloat = 2.0
    retry_max_seconds: PositiveFloat = 600.0


class ForwardSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One `[[forwards]]` block: a built-in handler that POSTs each matching event's stored body to `url`,
    signed with Standard Webhooks (`workers.forward`)."""

    name: str
    """Its handler name: deliveries, replays, the console and `GET /v1/handlers` know it by this."""
    actions: tuple[str, ...]
    """Action patterns, as `@handler` takes them."""
    url: str
    """http:// or https://; redirects are never followed."""
    secret: str
    """`whsec_<base64>` (inline, `env:NAME` or `file:/path`): the Standard Webhooks signing key."""
    timeout_seconds: PositiveFloat | None = None
    """Default: `[handlers] timeout_seconds`."""
    max_attempts: Positive | None = None
    """Default: `[handlers] default_max_attempts`."""
    allow_hosts: tuple[str, ...] = ()
    """Addresses or CIDRs exempt from the private-address guard (an internal service's address)."""


class WorkerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    heartbeat_seconds: Positive = 10
    """A killed worker's job is re-run after about 2 x this plus `maintenance_seconds`."""
    maintenance_seconds: Positive = 15
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 500
    """Most events one store job collects while it waits in the queue (ingest appends to it)."""
    heartbeat_path: str = "var/worker-heartbeat"
    """Each worker process touches `<this>.<slot>` as it beats; `python -m workers.liveness` reads only these
    files, so a Redis outage does not fail the probe."""


class ConsoleSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    enabled: bool = True
    """Serve the operator console at `/ui/` (sign-in with an `[[api_keys]]` key)."""
    session_secret: str | None = None
    """Signs session cookies (inline, `env:NAME` or `file:/path`). Unset: one is generated once and kept
    in the database, so every replica and restart shares it. Changing it signs everyone out."""
    session_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 12
    """A session ends this long after sign-in, or at sign-out, whichever comes first."""


class LogSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"
    access: bool = False
    """One `http_request` line per HTTP request (uvicorn's access log, with its request_id)."""


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    sources: tuple[SourceSettings, ...] = ()
    api_keys: tuple[ApiKeySettings, ...] = ()
    handlers: HandlerSettings = msgspec.field(default_factory=HandlerSettings)
    forwards: tuple[ForwardSettings, ...] = ()
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)

    def source(self, name: str) -> SourceSettings | None:
        for source in self.sources:
            if source.name == name:
                return source
        return None


_SECTIONS = ("server", "redis", "database", "handlers", "worker", "console", "log")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the TOML file named by HOOKYARD_CONFIG, apply env overrides, validate."""
    env = dict(os.environ if environ is None else environ)
    raw = _read_file(env)
    _apply_env_overrides(raw, env)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None
    return _checked(_resolve_secrets(settings, env))


def _read_file(env: dict[str, str]) -> dict[str, Any]:
    named = env.get(CONFIG_ENV)
    path = Path(named or DEFAULT_CONFIG_PATH)
    if not path.exists():
        if named:
            raise ConfigError(f"{CONFIG_ENV}: file {named} does not exist")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _apply_env_overrides(raw: dict[str, Any], env: dict[str, str]) -> None:
    for name, value in sorted(env.items()):
        if not name.startswith("HOOKYARD_") or name.startswith(_NOT_SETTINGS):
            continue
        rest = name.removeprefix("HOOKYARD_").lower()
        section, _, key = rest.partition("_")
        if section not in _SECTIONS or not key:
            raise ConfigError(f"{name}: unknown setting (sections: {', '.join(_SECTIONS)})")
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a table")
        table[key] = _env_value(value, listed=key in _list_keys(section))


def _list_keys(section: str) -> frozenset[str]:
    """The keys of a `[section]` whose value is a list (`server.trusted_proxies`, `handlers.modules`, ...)."""
    struct = next(field.type for field in msgspec.structs.fields(Settings) if field.name == section)
    return frozenset(
        field.name for field in msgspec.structs.fields(struct) if typing.get_origin(field.type) in (tuple, list)
    )


def _env_value(value: str, *, listed: bool) -> Any:
    """Lists come as JSON (`["a","b"]`) or comma-separated (`a,b`; empty: no items); scalars stay strings
    for msgspec to convert."""
    stripped = value.strip()
    if stripped.startswith("["):
        try:
            return msgspec.json.decode(stripped)
        except msgspec.DecodeError:
            return value
    if listed:
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value


_PATH_PART = re.compile(r"\.(\w+)|\[(\d+)\]")


def _describe_validation_error(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    detail, _, path = message.partition(" - at `$")
    key = ""
    for match in _PATH_PART.finditer(path.rstrip("`")):
        if match.group(1):
            key += ("." if key else "") + match.group(1)
        else:
            key += f"[{match.group(2)}]"
    unknown = re.search(r"unknown field `([^`]+)`", detail)
    if unknown:
        key = f"{key}.{unknown.group(1)}" if key else unknown.group(1)
        return f"{key}: unknown key"
    return f"{key or 'config'}: {detail}"


def resolve_secret(value: str, key: str, env: dict[str, str]) -> str:
    """`env:NAME` and `file:/path` references become the secret itself."""
    if value.startswith("env:"):
        name = value.removeprefix("env:")
        if name not in env:
            raise ConfigError(f"{key}: environment variable {name} is not set")
        return env[name]
    if value.startswith("file:"):
        path = Path(value.removeprefix("file:"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
        return text.removesuffix("\n").removesuffix("\r")
    return value


def _resolve_secrets(settings: Settings, env: dict[str, str]) -> Settings:
    sources = tuple(
        msgspec.structs.replace(
            source,
            secrets=tuple(
                resolve_secret(secret, f"sources[{i}].secrets[{j}]", env) for j, secret in enumerate(source.secrets)
            ),
        )
        for i, source in enumerate(settings.sources)
    )
    keys = tuple(
        msgspec.structs.replace(
            api_key,
            key=None if api_key.key is None else resolve_secret(api_key.key, f"api_keys[{i}].key", env),
            key_sha256=None
            if api_key.key_sha256 is None
            else resolve_secret(api_key.key_sha256, f"api_keys[{i}].key_sha256", env),
        )
        for i, api_key in enumerate(settings.api_keys)
    )
    console = settings.console
    if console.session_secret is not None:
        secret = resolve_secret(console.session_secret, "console.session_secret", env)
        console = msgspec.structs.replace(console, session_secret=secret)
    forwards = tuple(
        msgspec.structs.replace(forward, secret=resolve_secret(forward.secret, f"forwards[{i}].secret", env))
        for i, forward in enumerate(settings.forwards)
    )
    return msgspec.structs.replace(settings, sources=sources, api_keys=keys, console=console, forwards=forwards)


def _checked(settings: Settings) -> Settings:
    names = [source.name for source in settings.sources]
    sources = []
    for i, source in enumerate(settings.sources):
        if names.count(source.name) > 1:
            raise ConfigError(f"sources[{i}].name: duplicate source {source.name!r}")
        if source.name == OWN_SOURCE:
            raise ConfigError(f"sources[{i}].name: {OWN_SOURCE!r} is reserved for hookyard's own events")
        if not source.secrets or any(not secret for secret in source.secrets):
            raise ConfigError(f"sources[{i}].secrets: at least one non-empty secret is required")
        source = _with_preset(source, f"sources[{i}]")
        if source.scheme not in SCHEMES:
            raise ConfigError(f"sources[{i}].scheme: unknown scheme {source.scheme!r} (known: {', '.join(SCHEMES)})")
        try:
            scheme_for(source.scheme, source.secrets, source.tolerance_seconds)
        except ValueError as exc:
            raise ConfigError(f"sources[{i}].secrets: {exc}") from None
        _check_locators(source, f"sources[{i}]")
        for j, cidr in enumerate(source.allow_ips):
            _check_network(cidr, f"sources[{i}].allow_ips[{j}]")
        sources.append(source)
    settings = msgspec.structs.replace(settings, sources=tuple(sources))
    for j, cidr in enumerate(settings.server.trusted_proxies):
        _check_network(cidr, f"server.trusted_proxies[{j}]")
    for i, api_key in enumerate(settings.api_keys):
        if (api_key.key is None) == (api_key.key_sha256 is None):
            raise ConfigError(f"api_keys[{i}]: give exactly one of key or key_sha256")
        if api_key.key is not None and not api_key.key:
            raise ConfigError(f"api_keys[{i}].key: must not be empty")
        if api_key.key_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", api_key.key_sha256):
            raise ConfigError(f"api_keys[{i}].key_sha256: must be 64 hex characters")
    if settings.console.session_secret is not None and len(settings.console.session_secret) < 32:
        raise ConfigError("console.session_secret: must be at least 32 characters")
    _check_forwards(settings.forwards)
    if settings.handlers.retry_max_seconds < settings.handlers.retry_base_seconds:
        raise ConfigError("handlers.retry_max_seconds: must not be below retry_base_seconds")
    if not settings.database.url.startswith(("sqlite", "postgresql")):
        raise ConfigError("database.url: must be a sqlite:// or postgresql+psycopg:// URL")
    if not settings.redis.url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        raise ConfigError("redis.url: must be a redis://, rediss://, unix:// or redis+sentinel:// URL")
    return settings


def _check_forwards(forwards: tuple[ForwardSettings, ...]) -> None:
    """Each `[[forwards]]` block can run: a handler name, patterns, an http(s) URL, a usable secret.
    (A name taken by a `@handler` is refused when handlers load: `workers.registry`.)"""
    names = [forward.name for forward in forwards]
    for i, forward in enumerate(forwards):
        key = f"forwards[{i}]"
        if not HANDLER_NAME.match(forward.name):
            raise ConfigError(f"{key}.name: {forward.name!r} is not a handler name (letters, digits, _ . : -)")
        if forward.name in names[:i]:
            raise ConfigError(f"{key}.name: duplicate forward {forward.name!r}")
        if not forward.actions:
            raise ConfigError(f"{key}.actions: at least one action pattern is required")
        for j, pattern in enumerate(forward.actions):
            if not is_pattern(pattern):
                raise ConfigError(f"{key}.actions[{j}]: {pattern!r} is not an action pattern (LOCATION:*, *, ...)")
        url = urlsplit(forward.url)
        try:
            url.port  # noqa: B018 - a port that is not a number raises here
        except ValueError:
            url = url._replace(netloc="")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{key}.url: {forward.url!r} is not an http:// or https:// URL")
        if "@" in url.netloc:
            raise ConfigError(
                f"{key}.url: no credentials in the URL (the signature authenticates; URLs show in errors)"
            )
        try:
            StandardWebhooks.key(forward.secret)
        except ValueError as exc:
            raise ConfigError(f"{key}.secret: {exc}") from None
        for j, cidr in enumerate(forward.allow_hosts):
            _check_network(cidr, f"{key}.allow_hosts[{j}]")


def _with_preset(source: SourceSettings, key: str) -> SourceSettings:
    preset = PRESETS.get(source.preset)
    if preset is None:
        raise ConfigError(f"{key}.preset: unknown preset {source.preset!r} (known: {', '.join(PRESETS)})")
    return msgspec.structs.replace(
        source,
        scheme=source.scheme or preset.scheme,
        format=source.format or preset.format,
        action=source.action or preset.action,
        event_id=source.event_id or preset.event_id,
        sent_at=source.sent_at or preset.sent_at,
    )


def _check_locators(source: SourceSettings, key: str) -> None:
    """Locators parse; an event id or time is read from the request, never a literal."""
    located = [(f"{key}.action[{j}]", text) for j, text in enumerate(source.action)]
    located += [(f"{key}.{name}", text) for name, text in (("event_id", source.event_id), ("sent_at", source.sent_at))]
    for where, text in located:
        if not text:
            continue
        try:
            locator = parse_locator(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if locator.kind == "literal" and not where.endswith("]"):
            raise ConfigError(f"{where}: {text!r} is a literal; use json:<pointer> or header:<name>")


def _check_network(cidr: str, key: str) -> None:
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ConfigError(f"{key}: {cidr!r} is not an IP address or CIDR") from None
