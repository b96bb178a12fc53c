"""Issue 6 "Security": rate limits, replay age, constant-path signature checks, secrets kept out of logs, sign/send."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from schemas.signatures.gxm_sha256 import GxmSha256
from tests.conftest import SECRET, SIGNATURE, Config, ConfigFactory, Process, gxm_body, gxm_headers, wait_http
from tests.service.conftest import LIMITED_RATE, IngestServer, assert_error


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


# --- (a) per-source rate limits ---


def test_rate_limit_is_429_with_the_guestxm_shape(ingest: IngestServer, client: httpx.Client) -> None:
    """Placement: right after the signature check, before the body is read.

    Strangers (wrong IP, no valid signature) are refused before they are
    counted, so they cannot spend a vendor's budget; every signed request
    counts, valid or not, so a captured header cannot flood us with bodies
    either. The window starts at the source's first request and lasts 60 s.
    """
    url = ingest.url("limited")
    for _ in range(3):  # strangers first: they must not count
        stranger = client.post(url, content=gxm_body(), headers=gxm_headers(signature="0" * 64))
        assert_error(stranger, 401, "ERR:MSG:SIGNATURE")
    answers = [
        client.post(url, content=gxm_body(payload={"n": i}), headers=gxm_headers()).status_code
        for i in range(LIMITED_RATE)
    ]
    assert answers == [202] * LIMITED_RATE
    over = client.post(url, content=gxm_body(payload={"n": 99}), headers={**gxm_headers(), "X-Request-ID": "rl-1"})
    body = assert_error(over, 429, "ERR:MSG:RATELIMITTED", request_id="rl-1")
    assert body["warnings"] == {"limits": {"requests_per_minute": LIMITED_RATE}, "current": {"requests": 6}}
    assert 1 <= int(over.headers["retry-after"]) <= 60
    again = client.post(url, content=b"not even json", headers=gxm_headers())
    assert assert_error(again, 429, "ERR:MSG:RATELIMITTED")["warnings"]["current"] == {"requests": 7}
    assert ingest.queued() == LIMITED_RATE
    # Another source keeps its own budget.
    assert client.post(ingest.url(), content=gxm_body(), headers=gxm_headers()).status_code == 202


def test_rate_limit_is_shared_through_redis(ingest: IngestServer, client: httpx.Client) -> None:
    """What one replica counted, another sees: the count lives in Redis, not in the process."""
    ingest.redis.set("hookyard:rl:ingest:limited", LIMITED_RATE, ex=30)
    response = client.post(ingest.url("limited"), content=gxm_body(), headers=gxm_headers())
    assert_error(response, 429, "ERR:MSG:RATELIMITTED")
    assert 1 <= int(response.headers["retry-after"]) <= 30
    ingest.redis.delete("hookyard:rl:ingest:limited")
    assert client.post(ingest.url("limited"), content=gxm_body(), headers=gxm_headers()).status_code == 202


# --- (b) max_age_seconds is in test_ingest.py::test_stale_sent_at_is_400_when_max_age_is_set ---


# --- (c) the signature check walks the same path whatever the header holds ---


def call_trace(verify: Callable[[], bool]) -> tuple[list[str], int]:
    """Every Python and C call made by `verify`, and how many of them were `hmac.compare_digest`."""
    calls: list[str] = []

    def profiler(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            calls.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
        elif event == "c_call":
            calls.append(f"c:{getattr(arg, '__qualname__', repr(arg))}")

    sys.setprofile(profiler)
    try:
        verify()
    finally:
        sys.setprofile(None)
    return calls, sum(1 for call in calls if call == "c:compare_digest")


@pytest.mark.parametrize("secrets", [[SECRET], [SECRET, "second", "third"]], ids=["one-secret", "three-secrets"])
def test_signature_check_follows_one_path_for_any_wrong_value(secrets: list[str]) -> None:
    scheme = GxmSha256(secrets)
    headers = {
        "right-length": b"0" * 64,
        "short": b"ab",
        "long": b"f" * 4096,
        "empty": b"",
        "non-ascii": "é".encode() * 32,
        "almost": SIGNATURE[:-1].encode() + b"0",
    }
    traces = {
        name: call_trace(lambda value=value: scheme.verify({b"x-gxm-apisignature": value}))
        for name, value in headers.items()
    }
    traces["missing"] = call_trace(lambda: scheme.verify({}))
    right = {b"x-gxm-apisignature": SIGNATURE.encode()}
    traces["right"] = call_trace(lambda: scheme.verify(right))
    reference = traces["right-length"]
    assert reference[1] == len(secrets)  # every secret compared, no early return
    for name, trace in traces.items():
        assert trace == reference, name
    assert scheme.verify({b"x-gxm-apisignature": SIGNATURE.encode()})
    assert not scheme.verify({b"x-gxm-apisignature": b"0" * 64})


# --- (d) secrets never in logs ---


API_KEY = "api-key-do-not-log-0123456789"


def test_secrets_signatures_and_payloads_stay_out_of_the_logs(
    make_config: ConfigFactory, spawn: Callable[..., Process], client: httpx.Client
) -> None:
    secret = "s3cret-that-must-never-be-logged"
    signature = hashlib.sha256(secret.encode()).hexdigest()
    config = make_config(
        sources=[{"name": "gxm", "secrets": [secret]}],
        api_keys=[{"name": "admin", "key": API_KEY, "role": "admin"}],
        log={"format": "json", "level": "debug"},
    )
    process = spawn(["serve"], config.env(), name="serve")
    base = f"http://127.0.0.1:{config.settings.server.port}"
    wait_http(f"{base}/health/live")
    marker = "PAYLOAD-MARKER-7f3a"
    body = gxm_body(payload={"note": marker})
    url = f"{base}/webhooks/gxm"
    responses = [
        client.post(url, content=body, headers=gxm_headers(signature=signature)),
        client.post(url, content=body, headers=gxm_headers(signature=signature)),
        client.post(url, content=body, headers=gxm_headers(signature=signature[:-1] + "0")),
        client.post(url, content=body, headers=gxm_headers(signature=secret)),
        client.post(url, content=body[:-3], headers=gxm_headers(signature=signature)),
        client.post(url, content=body, headers=gxm_headers(signature=signature, content_type="text/plain")),
        client.get(f"{base}/v1/events", headers={"Authorization": f"Bearer {API_KEY}"}),
        client.get(f"{base}/v1/events", headers={"X-API-Key": API_KEY + "x"}),
    ]
    assert [r.status_code for r in responses[:6]] == [202, 200, 401, 401, 400, 415]
    for response in responses:
        assert secret not in response.text
        assert signature not in response.text
    process.stop()
    output = process.output()
    assert "ingest_rejected" in output  # the server did log about these requests at debug level
    for needle in (secret, signature, signature[:-1], API_KEY, marker):
        assert needle not in output, needle


# --- (e) hookyard sign and hookyard send ---


def hookyard(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=config.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sign_prints_the_header_for_the_sources_secret(make_config: ConfigFactory) -> None:
    config = make_config(sources=[{"name": "vendor", "secrets": ["rotating-new", "rotating-old"]}])
    result = hookyard(config, "sign", "--source", "vendor")
    assert result.returncode == 0, result.stderr
    expected = hashlib.sha256(b"rotating-new").hexdigest()
    assert result.stdout == f"X-GXM-APISIGNATURE: {expected}\n"
    unknown = hookyard(config, "sign", "--source", "nope")
    assert unknown.returncode == 2
    assert "nope" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_send_posts_a_signed_event_to_a_real_server(config: Config, server: str, redis_client: Any) -> None:
    result = hookyard(
        config, "send", "--source", "gxm", "--action", "ORDER:PAID", "--payload", '{"order": 7}', "--url",
        f"{server}/webhooks/gxm",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status, _, body = result.stdout.partition(" ")
    assert status == "202"
    assert '"status":"queued"' in body
    assert redis_client.llen("rq:queue:hookyard") == 1


def test_send_default_url_comes_from_the_server_settings(config: Config, server: str) -> None:
    result = hookyard(config, "send")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("202 ")


def test_send_reports_a_refusal_with_exit_1(make_config: ConfigFactory, spawn: Callable[..., Process]) -> None:
    config = make_config(sources=[{"name": "gxm", "secrets": [SECRET]}])
    process = spawn(["serve"], config.env(), name="serve")
    wait_http(f"http://127.0.0.1:{config.settings.server.port}/health/live")
    wrong = Path(config.path).read_text().replace(f'"{SECRET}"', '"not-the-servers-secret"')
    other = Path(config.path).with_name("client.toml")
    other.write_text(wrong)
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "send"],
        env={**config.env(), "HOOKYARD_CONFIG": str(other)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("401 ")
    assert "ERR:MSG:SIGNATURE" in result.stdout
    process.stop()


def test_send_to_nothing_listening_is_one_line_exit_1(config: Config) -> None:
    result = hookyard(config, "send", "--url", "http://127.0.0.1:9/webhooks/gxm", "--timeout", "2")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr
