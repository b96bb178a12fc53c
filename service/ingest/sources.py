"""Configured sources as ingest sees them: scheme, format, allow-list, limits.

The client address is the socket peer unless that peer is a configured
trusted proxy; only then is `X-Forwarded-For` read, right to left, skipping
further trusted proxies. No other peer can choose its address (`hookyard
serve` turns uvicorn's own proxy-header handling off for that reason). An
IPv4-mapped IPv6 address (`::ffff:203.0.113.7`, what a dual-stack socket
reports) is the IPv4 address it maps, so IPv4 allow-lists and proxies match it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from schemas.settings import Settings, SourceSettings
from schemas.signatures import SignatureScheme, scheme_for
from service.ingest.formats import Format, format_for

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

log = structlog.get_logger("hookyard.ingest")

NARROW_PREFIX = {4: 24, 6: 64}
"""A trusted proxy range wider than this (a /16, a /8, an IPv6 /48) is warned about at start-up: every
address in it may choose the client address that `allow_ips` checks."""


@dataclass(frozen=True)
class Source:
    name: str
    scheme: SignatureScheme
    format: Format
    allow: tuple[Network, ...]
    max_age_seconds: int | None
    rate_per_minute: int | None

    def allows(self, address: Address | None) -> bool:
        if not self.allow:
            return True
        return address is not None and any(address in network for network in self.allow)


def _networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def build_sources(settings: Settings) -> dict[str, Source]:
    """Every configured source; `ConfigError` naming the key for a format it cannot use."""
    return {source.name: _source(source, f"sources[{i}]") for i, source in enumerate(settings.sources)}


def _source(source: SourceSettings, key: str) -> Source:
    return Source(
        name=source.name,
        scheme=scheme_for(source.scheme, source.secrets, source.tolerance_seconds),
        format=format_for(source, key),
        allow=_networks(source.allow_ips),
        max_age_seconds=source.max_age_seconds,
        rate_per_minute=source.rate_per_minute,
    )


class ClientAddress:
    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self._trusted = _networks(trusted_proxies)

    def resolve(self, peer: str | None, forwarded_for: bytes | None) -> Address | None:
        address = _parse(peer)
        if address is None or not self._is_trusted(address) or not forwarded_for:
            return address
        hops = [hop.strip() for hop in forwarded_for.decode("latin-1").split(",")]
        for hop in reversed(hops):
            hop_address = _parse(hop)
            if hop_address is None:
                return address  # a garbled header from behind our proxy: believe the proxy only
            if not self._is_trusted(hop_address):
                return hop_address
            address = hop_address
        return address

    def trusts(self, peer: str | None) -> bool:
        """Whether the socket peer is a configured trusted proxy (whose forwarded headers are believed)."""
        address = _parse(peer)
        return address is not None and self._is_trusted(address)

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)


def wide_ranges(cidrs: Sequence[str]) -> list[str]:
    """The configured ranges wider than `NARROW_PREFIX` for their IP version."""
    return [
        cidr
        for cidr, network in zip(cidrs, _networks(cidrs), strict=True)
        if network.prefixlen < NARROW_PREFIX[network.version]
    ]


def warn_wide_trusted_proxies(cidrs: Sequence[str]) -> None:
    """One warning at start-up naming each trusted proxy range wider than a /24 (IPv6: a /64)."""
    wide = wide_ranges(cidrs)
    if wide:
        log.warning(
            "trusted_proxies_wide",
            ranges=wide,
            detail="every address in these ranges may set X-Forwarded-For and so pass allow_ips: "
            "list only your proxies' addresses",
        )


def _parse(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address
