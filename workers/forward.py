"""Forwards: the built-in handler kind that POSTs an event's stored body to a URL (`[[forwards]]`).

A forward is a handler like any other (same deliveries, retries, replays,
console); only its function is built from settings instead of decorated.
Each attempt:

1. resolves the URL's host once and picks an address the private-address
   guard lets through (`blocked`; `allow_hosts` exempts addresses or CIDRs).
   None: the delivery is dead at once, `last_error` starting `blocked address`.
2. connects to exactly that address (the URL's host replaced by it), with
   the original `Host` header and TLS server name, so nothing re-resolves
   between the check and the connection. Redirects are never followed and
   no proxy from the environment is used.
3. sends the stored body byte for byte with its original `Content-Type`,
   signed with the `standard-webhooks` scheme (`webhook-id` is the delivery's
   idempotency key, `<event id>:<forward name>`, stable across retries and
   replays, so the receiver can de-duplicate).

2xx: succeeded. 410: dead. 429/503 with `Retry-After`: retried after that
long (capped by `retry_max_seconds`). Anything else, a time-out or a refused
connection: retried with the backoff.

The client is httpcore's sync `ConnectionPool`, httpx's own transport
(README, Decisions): a worker process runs handlers one at a time, so an
event loop would add a hop per request and no concurrency. One pool per
forward and process keeps keep-alive connections across attempts and jobs; a handler
time-out (SIGALRM) mid-request closes only that connection. httpcore never
follows redirects and never reads proxy variables from the environment.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpcore

from schemas.settings import ForwardSettings, HandlerSettings
from schemas.signatures.standard_webhooks import StandardWebhooks
from workers.event import DeadDelivery, DeliveryError, Event, RetryDeliveryAfter
from workers.registry import HandlerSpec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MODULE = "[[forwards]]"
"""What `hookyard handlers` and `GET /v1/handlers` show as a forward's module."""
USER_AGENT = b"hookyard-forward"
POOL_CONNECTIONS = 4
"""Keep-alive connections one forward keeps per worker process (its handlers run one at a time: one is in use)."""
DEFAULT_CONTENT_TYPE = "application/json"
"""For events stored before headers were kept: every stored body is JSON."""
ERROR_BODY_CHARS = 200
"""How much of a refusing receiver's answer `last_error` quotes."""

_METADATA = ipaddress.ip_address("169.254.169.254")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class ForwardFailed(DeliveryError):
    """A failed attempt to retry with the backoff (a status, a time-out, a refused connection)."""


def blocked(address: IPAddress) -> str | None:
    """Why the guard refuses `address` (`loopback`, `private`, ...), or None if it may be connected to.

    An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is judged as the IPv4 address it carries.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address == _METADATA:
        return "cloud metadata"
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared CGNAT"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
    )
    return next((reason for hit, reason in checks if hit), None)


def allowed(address: IPAddress, allow: tuple[IPNetwork, ...]) -> bool:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return any(address in network or (mapped is not None and mapped in network) for network in allow)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` value (delay-seconds or an HTTP date) in seconds from now; None if absent or malformed."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    moment = datetime.now(UTC).timestamp() if now is None else now
    return max(when.timestamp() - moment, 0.0)


class Forward:
    """The handler function of one `[[forwards]]` block."""

    def __init__(self, settings: ForwardSettings, default_timeout: float) -> None:
        url = urlsplit(settings.url)
        self.name = settings.name
        self.url = settings.url
        self.scheme = url.scheme.encode()
        self.host = url.hostname or ""
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.host_header = url.netloc.encode("idna")
        self.target = (url.path or "/").encode() + (b"?" + url.query.encode() if url.query else b"")
        self.secret = settings.secret
        self.signer = StandardWebhooks([settings.secret])
        self.timeout = settings.timeout_seconds or default_timeout
        self.allow: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(a, strict=False) for a in settings.allow_hosts)
        self.extensions: dict[str, object] = {
            "timeout": dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)
        }
        if url.scheme == "https":
            self.extensions["sni_hostname"] = self.host  # the certificate is checked against the name, not the address
        self._pool: httpcore.ConnectionPool | None = None
        self._pool_pid = 0

    def pool(self) -> httpcore.ConnectionPool:
        """This forward's keep-alive connections in this process (made after any fork).

        One pool per forward, not per process: connections are pooled by the address connected to,
        and two host names on one address must never share a TLS connection made for the other.
        """
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = httpcore.ConnectionPool(
                max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS
            )
            self._pool_pid = os.getpid()
        return self._pool

    def __call__(self, event: Event) -> None:
        address = self.address()
        body = event.body.encode("utf-8")
        headers = [
            (b"host", self.host_header),
            (b"user-agent", USER_AGENT),
            (b"content-type", (event.headers.get("content-type") or DEFAULT_CONTENT_TYPE).encode("latin-1", "replace")),
            (b"content-length", str(len(body)).encode()),
        ]
        signed = self.signer.sign(self.secret, body, message_id=event.idempotency_key)
        headers += [(name.encode(), value.encode()) for name, value in signed.items()]
        target = httpcore.URL(scheme=self.scheme, host=str(address).encode(), port=self.port, target=self.target)
        try:
            response = self.pool().request(b"POST", target, headers=headers, content=body, extensions=self.extensions)
        except httpcore.TimeoutException:
            raise ForwardFailed(f"timed out after {self.timeout:g} s: POST {self.url} ({address})") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError) as exc:
            raise ForwardFailed(f"cannot POST {self.url} ({address}): {type(exc).__name__}: {exc}") from None
        self.judge(
            response.status,
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers},
            response.content,
        )

    def judge(self, status: int, headers: dict[str, str], content: bytes) -> None:
        """Say what the receiver's answer means: nothing (2xx), dead (410), retry later, or retry."""
        if 200 <= status < 300:
            return
        said = f"HTTP {status} from {self.url}"
        if 300 <= status < 400:
            said += f" (redirect to {headers.get('location', '?')} not followed)"
        else:
            snippet = content[:ERROR_BODY_CHARS].decode("utf-8", "replace").strip()
            said += f": {snippet}" if snippet else ""
        if status == 410:
            raise DeadDelivery(said)
        if status in (429, 503):
            wait = retry_after_seconds(headers.get("retry-after"), time.time())
            if wait is not None:
                raise RetryDeliveryAfter(f"{said} (Retry-After: {wait:g} s)", wait)
        raise ForwardFailed(said)

    def address(self) -> IPAddress:
        """Resolve the host once and pick the first address the guard lets through; none: dead at once."""
        try:
            candidates: list[IPAddress] = [ipaddress.ip_address(self.host)]
        except ValueError:
            try:
                infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise ForwardFailed(f"cannot resolve {self.host}: {exc}") from None
            candidates = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        first_refusal = ""
        for candidate in candidates:
            reason = blocked(candidate)
            if reason is None or allowed(candidate, self.allow):
                return candidate
            first_refusal = first_refusal or f"{candidate} ({reason})"
        raise DeadDelivery(
            f"blocked address {first_refusal} for {self.host}: not forwarded (allow_hosts exempts an address or CIDR)"
        )


def forward_spec(settings: ForwardSettings, handlers: HandlerSettings) -> HandlerSpec:
    """The registry entry of one `[[forwards]]` block: an async handler named after it."""
    return HandlerSpec(
        name=settings.name,
        patterns=settings.actions,
        func=Forward(settings, handlers.timeout_seconds),
        max_attempts=settings.max_attempts,
        timeout_seconds=settings.timeout_seconds,
        module=MODULE,
    )
