"""Forwards in pieces: the private-address guard's table, `Retry-After`, start-up errors, name clashes.

The whole path (a real receiver, real processes) is tests/service/test_forwards.py.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from schemas.settings import ConfigError, ForwardSettings, Settings, load_settings
from workers.event import DeadDelivery, RetryDeliveryAfter
from workers.forward import MODULE, Forward, ForwardFailed, allowed, blocked, retry_after_seconds
from workers.registry import HandlerError, Registry

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("100.64.0.1", "shared CGNAT"),
        ("100.127.255.254", "shared CGNAT"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("8.8.8.8", None),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_the_guard_refuses_every_private_kind_of_address(address: str, reason: str | None) -> None:
    assert blocked(ipaddress.ip_address(address)) == reason


def test_allow_hosts_exempts_addresses_and_cidrs_mapped_ones_included() -> None:
    allow = (ipaddress.ip_network("10.1.2.3/32"), ipaddress.ip_network("192.168.0.0/16"))
    assert allowed(ipaddress.ip_address("10.1.2.3"), allow)
    assert allowed(ipaddress.ip_address("192.168.7.7"), allow)
    assert allowed(ipaddress.ip_address("::ffff:10.1.2.3"), allow)
    assert not allowed(ipaddress.ip_address("10.1.2.4"), allow)
    assert not allowed(ipaddress.ip_address("127.0.0.1"), allow)


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(" 3 ", now) == 3.0
    assert retry_after_seconds(format_datetime(datetime(2026, 11, 30, 12, 1, 30, tzinfo=UTC), usegmt=True), now) == 90
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
    assert retry_after_seconds(None, now) is None


FORWARD = '[[forwards]]\nname = "billing"\nactions = ["INVOICE:*"]\nurl = "https://billing.example/hooks"\n'


def load(tmp_path: Path, toml: str, **env: str) -> Settings:
    path = tmp_path / "hookyard.toml"
    path.write_text(toml)
    return load_settings({"HOOKYARD_CONFIG": str(path), **env})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            FORWARD.replace("https://", "ftp://") + f'secret = "{SECRET}"\n',
            "forwards[0].url: 'ftp://billing.example/hooks' is not an http:// or https:// URL",
        ),
        (FORWARD.replace("https://billing.example", "http://") + f'secret = "{SECRET}"\n', "forwards[0].url:"),
        (FORWARD.replace(".example", ".example:port") + f'secret = "{SECRET}"\n', "forwards[0].url:"),
        (
            FORWARD.replace("https://", "https://user:pw@") + f'secret = "{SECRET}"\n',
            "forwards[0].url: no credentials in the URL",
        ),
        (
            FORWARD + 'secret = "whsec_!!!"\n',
            "forwards[0].secret: a standard-webhooks secret is `whsec_` followed by base64",
        ),
        (FORWARD + 'secret = "env:NOT_SET_HERE"\n', "forwards[0].secret: environment variable NOT_SET_HERE is not set"),
        (FORWARD.replace("INVOICE:*", "invoice") + f'secret = "{SECRET}"\n', "forwards[0].actions[0]: 'invoice'"),
        (FORWARD + f'secret = "{SECRET}"\nallow_hosts = ["10.0.0.0/33"]\n', "forwards[0].allow_hosts[0]:"),
        (
            FORWARD + f'secret = "{SECRET}"\n' + FORWARD + f'secret = "{SECRET}"\n',
            "forwards[1].name: duplicate forward 'billing'",
        ),
        (FORWARD.replace('"billing"', '"bad name"') + f'secret = "{SECRET}"\n', "forwards[0].name: 'bad name'"),
        (FORWARD + f'secret = "{SECRET}"\nretries = 3\n', "forwards[0].retries: unknown key"),
        ('[[sources]]\nname = "hookyard"\nsecrets = ["s"]\n', "sources[0].name: 'hookyard' is reserved"),
    ],
)
def test_a_bad_forward_stops_start_up_with_one_line(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, toml)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_forward_secret_may_come_from_the_environment(tmp_path: Path) -> None:
    settings = load(tmp_path, FORWARD + 'secret = "env:BILLING_SECRET"\ntimeout_seconds = 3\n', BILLING_SECRET=SECRET)
    assert settings.forwards[0].secret == SECRET
    assert settings.forwards[0].timeout_seconds == 3


def test_a_forward_is_a_handler_and_its_name_may_not_clash(tmp_path: Path) -> None:
    settings = load(tmp_path, FORWARD + f'secret = "{SECRET}"\nmax_attempts = 7\n')
    registry = Registry()
    registry.load_configured(settings)
    spec = registry.get("billing")
    assert spec is not None
    assert (spec.patterns, spec.max_attempts, spec.is_async, spec.module) == (("INVOICE:*",), 7, False, MODULE)
    assert spec.matches("INVOICE:PAID")
    assert not spec.matches("LOCATION:CREATED")
    registry.load_configured(settings)  # loading twice (the API reloads) is not a clash
    info = registry.describe(5, 30.0)
    assert [(i.name, i.max_attempts, i.timeout_seconds) for i in info] == [("billing", 7, 30.0)]

    clashing = Registry()

    @clashing.handler("INVOICE:*", name="billing")
    def billing(event: object) -> None: ...

    with pytest.raises(HandlerError, match=r"\[\[forwards\]\] 'billing': the name is taken by a handler in "):
        clashing.load_configured(settings)


def forward(url: str, allow: tuple[str, ...] = ()) -> Forward:
    return Forward(ForwardSettings(name="f", actions=("*",), url=url, secret=SECRET, allow_hosts=allow), 5.0)


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "message"),
    [
        (200, {}, None, ""),
        (204, {}, None, ""),
        (410, {}, DeadDelivery, "HTTP 410 from http://127.0.0.1:9/hooks: gone"),
        (
            429,
            {"retry-after": "7"},
            RetryDeliveryAfter,
            "HTTP 429 from http://127.0.0.1:9/hooks: gone (Retry-After: 7 s)",
        ),
        (
            503,
            {"retry-after": "2"},
            RetryDeliveryAfter,
            "HTTP 503 from http://127.0.0.1:9/hooks: gone (Retry-After: 2 s)",
        ),
        (429, {}, ForwardFailed, "HTTP 429 from http://127.0.0.1:9/hooks: gone"),
        (500, {"retry-after": "7"}, ForwardFailed, "HTTP 500 from http://127.0.0.1:9/hooks: gone"),
        (
            301,
            {"location": "/x"},
            ForwardFailed,
            "HTTP 301 from http://127.0.0.1:9/hooks (redirect to /x not followed)",
        ),
    ],
)
def test_what_each_answer_means(
    status: int, headers: dict[str, str], outcome: type[Exception] | None, message: str
) -> None:
    judge = forward("http://127.0.0.1:9/hooks").judge
    if outcome is None:
        judge(status, headers, b"")
        return
    with pytest.raises(outcome) as caught:
        judge(status, headers, b"gone")
    assert str(caught.value) == message
    if isinstance(caught.value, RetryDeliveryAfter):
        assert caught.value.seconds == float(headers["retry-after"])


def test_a_host_name_is_resolved_once_and_only_an_allowed_address_is_used() -> None:
    with pytest.raises(DeadDelivery, match=r"^blocked address (127\.0\.0\.1|::1) \(loopback\) for localhost: "):
        forward("http://localhost:9/hooks").address()
    assert str(forward("http://localhost:9/hooks", ("127.0.0.0/8", "::1")).address()) in ("127.0.0.1", "::1")
    mapped = forward("http://[::ffff:10.0.0.1]:9/hooks", ("10.0.0.0/8",)).address()
    assert mapped == ipaddress.ip_address("::ffff:10.0.0.1")
    with pytest.raises(DeadDelivery, match=r"^blocked address 169\.254\.169\.254 \(cloud metadata\) for "):
        forward("http://169.254.169.254/latest/meta-data").address()
