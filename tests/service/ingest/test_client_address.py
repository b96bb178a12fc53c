"""Who the client is: only `[server] trusted_proxies` may vouch for an `X-Forwarded-For` address.

The end-to-end test runs a real `hookyard serve` that trusts no loopback proxy: a client on
127.0.0.1 (a sidecar, a local proxy, a foothold on the host) must not pass `allow_ips` by
writing a vendor's address into `X-Forwarded-For` (uvicorn's own proxy headers used to let it).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx

from service.ingest.sources import ClientAddress, wide_ranges
from tests.conftest import SECRET, gxm_body, gxm_headers
from tests.service.conftest import ALLOWED_NET, assert_error, start_server


def test_forwarded_for_from_an_untrusted_loopback_client_does_not_pass_allow_ips(
    tmp_path: Path, redis_url: str
) -> None:
    sources = [{"name": "locked", "secrets": [SECRET], "allow_ips": [ALLOWED_NET]}]
    process, config = start_server(tmp_path, redis_url, sources=sources, server={"trusted_proxies": ["10.0.0.0/8"]})
    try:
        url = f"http://127.0.0.1:{config.settings.server.port}/webhooks/locked"
        spoofed = {**gxm_headers(), "X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"}
        response = httpx.post(url, content=gxm_body(), headers=spoofed, timeout=10)
        assert_error(response, 403, "ERR:MSG:FORBIDDEN")
        forwarded = {**gxm_headers(), "Forwarded": "for=203.0.113.7"}
        assert_error(httpx.post(url, content=gxm_body(), headers=forwarded, timeout=10), 403, "ERR:MSG:FORBIDDEN")
    finally:
        process.stop()
    # 10.0.0.0/8 is wider than a /24: the operator is told once, at start-up.
    output = process.output()
    assert "trusted_proxies_wide" in output, output
    assert "10.0.0.0/8" in output


def test_ipv4_mapped_peers_are_their_ipv4_address() -> None:
    resolver = ClientAddress(["127.0.0.1/32"])
    # A dual-stack socket reports an IPv4 proxy as ::ffff:127.0.0.1: still the trusted proxy.
    assert resolver.resolve("::ffff:127.0.0.1", b"203.0.113.7") == ipaddress.ip_address("203.0.113.7")
    assert resolver.trusts("::ffff:127.0.0.1")
    # A mapped vendor address matches an IPv4 allow-list, and a mapped hop in the header is unwrapped.
    vendor = resolver.resolve("::ffff:203.0.113.7", None)
    assert vendor == ipaddress.ip_address("203.0.113.7")
    assert resolver.resolve("127.0.0.1", b"::ffff:198.51.100.9") == ipaddress.ip_address("198.51.100.9")
    assert not ClientAddress([]).trusts("::ffff:127.0.0.1")


def test_ranges_wider_than_a_24_or_a_64_are_wide() -> None:
    given = ["10.0.0.0/8", "172.30.0.0/24", "192.168.0.10", "fd00::/48", "fd00::/64", "2001:db8::1/128"]
    assert wide_ranges(given) == ["10.0.0.0/8", "fd00::/48"]
