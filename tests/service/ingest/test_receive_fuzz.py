"""Garbage at the ingest endpoint of a real server: always a 4xx envelope, never a 5xx, nothing queued.

Hypothesis runs over real HTTP against the module's shared server, bounded in
examples and time. Raw sockets cover what an HTTP client will not send: a
`Content-Length` that lies and a sender that trickles its body.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SIGNATURE, gxm_body, gxm_headers
from tests.service.conftest import IngestServer, assert_error

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
VALIDATION = "ERR:MSG:VALIDATION:"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def is_clean_rejection(response: httpx.Response) -> dict[str, Any]:
    """A 4xx envelope with a `meta.code`, and nothing that looks like a stack trace."""
    assert 400 <= response.status_code < 500, response.text
    body: dict[str, Any] = msgspec.json.decode(response.content)
    assert set(body) == {"data", "meta", "warnings"}
    assert body["data"]["status"] == response.status_code
    assert body["meta"]["code"].startswith("ERR:MSG:")
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    return body


# --- hypothesis over HTTP ---


def is_field_value(raw: bytes) -> bool:
    """RFC 9110 field-value bytes; anything else is malformed HTTP the server's parser refuses."""
    return all(byte == 0x09 or 0x20 <= byte != 0x7F for byte in raw)


def expected_for_header(raw: bytes, code: str) -> str:
    return code if is_field_value(raw) else VALIDATION + "HTTP"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@BOUNDED
@given(body=st.binary(max_size=2048))
def test_arbitrary_bytes_are_a_400(ingest: IngestServer, client: httpx.Client, body: bytes) -> None:
    response = client.post(ingest.url(), content=body, headers=gxm_headers())
    assert is_clean_rejection(response)["meta"]["code"].startswith(VALIDATION)
    ingest.assert_nothing_queued()


@BOUNDED
@given(value=json_values)
def test_arbitrary_json_values_are_a_400(ingest: IngestServer, client: httpx.Client, value: Any) -> None:
    response = client.post(ingest.url(), content=msgspec.json.encode(value), headers=gxm_headers())
    assert is_clean_rejection(response)["meta"]["code"].startswith(VALIDATION)
    ingest.assert_nothing_queued()


FIELDS = ("sent_at", "action", "payload")


@BOUNDED
@given(
    field=st.sampled_from(FIELDS),
    replacement=json_values | st.just("LOCATION:CREATED") | st.integers(),
    drop=st.booleans(),
    extra=st.dictionaries(st.text(max_size=8).filter(lambda k: k not in FIELDS), json_values, max_size=3),
)
def test_mutated_envelopes_are_accepted_or_name_the_field(
    ingest: IngestServer, client: httpx.Client, field: str, replacement: Any, drop: bool, extra: dict[str, Any]
) -> None:
    ingest.redis.flushdb()
    data: dict[str, Any] = {"sent_at": 1564662600, "action": "LOCATION:CREATED", "payload": {"company_id": 1}}
    if drop:
        del data[field]
    else:
        data[field] = replacement
    data.update(extra)
    response = client.post(ingest.url(), content=msgspec.json.encode({"data": data}), headers=gxm_headers())
    if response.status_code == 202:
        assert ingest.queued() == 1
        return
    body = is_clean_rejection(response)
    assert body["meta"]["code"] == VALIDATION + field.upper(), (data, body)
    ingest.assert_nothing_queued()


@BOUNDED
@given(content_type=st.text(max_size=40).filter(lambda t: "json" not in t.lower()))
def test_non_json_content_types_are_415(ingest: IngestServer, client: httpx.Client, content_type: str) -> None:
    headers = [(b"X-GXM-APISIGNATURE", SIGNATURE.encode()), (b"Content-Type", content_type.encode("utf-8"))]
    try:
        response = client.post(ingest.url(), content=gxm_body(), headers=headers)
    except httpx.LocalProtocolError:
        return  # not a header a client can send (a newline in it)
    expected = expected_for_header(content_type.encode(), "ERR:MSG:UNSUPPORTED_MEDIA_TYPE")
    assert is_clean_rejection(response)["meta"]["code"] == expected
    ingest.assert_nothing_queued()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)
@given(signature=st.binary(max_size=200))
def test_arbitrary_signatures_are_401(ingest: IngestServer, client: httpx.Client, signature: bytes) -> None:
    headers = [(b"Content-Type", b"application/json"), (b"X-GXM-APISIGNATURE", signature)]
    try:
        response = client.post(ingest.url(), content=gxm_body(), headers=headers)
    except httpx.LocalProtocolError:
        return
    if signature.strip().lower() == SIGNATURE.encode():
        return
    assert is_clean_rejection(response)["meta"]["code"] == expected_for_header(signature, "ERR:MSG:SIGNATURE")


# --- named nasties ---


def data_with(payload_json: bytes) -> bytes:
    return b'{"data": {"sent_at": 1564662600, "action": "LOCATION:CREATED", "payload": ' + payload_json + b"}}"


DUP = "DUPLICATE_KEY"
NASTY = [
    pytest.param(data_with(b'{"s": "\xff\xfe"}'), "JSON", id="invalid-utf8-in-string"),
    pytest.param(b"\xef\xbb\xbf" + gxm_body(), "JSON", id="utf8-bom"),
    pytest.param(data_with(b'{"s": "\xed\xa0\x80"}'), "JSON", id="encoded-surrogate"),
    pytest.param(data_with(b'{"s": "\\ud800"}'), "JSON", id="lone-surrogate-escape"),
    pytest.param(data_with(b'{"s": "a\x00b"}'), "JSON", id="raw-nul-in-string"),
    pytest.param(b"\x00" * 64, "JSON", id="nul-bytes"),
    pytest.param(gxm_body() + b"\x00", "JSON", id="trailing-nul"),
    pytest.param(data_with(b"[" * 100_000 + b"]" * 100_000), "JSON", id="nested-100000-arrays"),
    pytest.param(data_with(b'{"a":' * 100_000 + b"1" + b"}" * 100_000), "JSON", id="nested-100000-objects"),
    pytest.param(data_with(b'{"n": 1' + b"0" * 10_000 + b"}"), "NUMBER", id="int-10000-digits"),
    pytest.param(data_with(b'{"n": -1' + b"0" * 10_000 + b"}"), "NUMBER", id="negative-int-10000-digits"),
    pytest.param(data_with(b'{"n": 1e' + b"9" * 10_000 + b"}"), "NUMBER", id="exponent-10000-digits"),
    pytest.param(data_with(b'{"n": NaN}'), "JSON", id="nan"),
    pytest.param(data_with(b'{"n": Infinity}'), "JSON", id="infinity"),
    pytest.param(
        b'{"data": {"sent_at": 1' + b"0" * 10_000 + b', "action": "A:B", "payload": {}}}',
        "NUMBER",
        id="sent-at-10000-digits",
    ),
    pytest.param(gxm_body()[:-1], "JSON", id="truncated"),
    pytest.param(gxm_body() + b"{}", "JSON", id="trailing-garbage"),
    pytest.param(b'{"data": {"sent_at": 1, "action": "A:B", "action": "B:C", "payload": {}}}', DUP, id="dup-action"),
    pytest.param(b'{"data": {"sent_at": 1, "action": "A:B", "payload": {}}, "data": 5}', DUP, id="dup-data"),
    pytest.param(b'{"data": {"sent_at": 1, "action": "A:B", "payload": {}, "p\\u0061yload": 1}}', DUP, id="escaped"),
    pytest.param(b'{"data": {"sent_at": 1, "sent_at": 1, "action": "A:B", "payload": {}}}', DUP, id="dup-sent-at"),
]


@pytest.mark.parametrize(("body", "what"), NASTY)
def test_nasty_bodies_are_a_400_naming_what(ingest: IngestServer, client: httpx.Client, body: bytes, what: str) -> None:
    response = client.post(ingest.url(), content=body, headers=gxm_headers())
    assert_error(response, 400, VALIDATION + what)
    ingest.assert_nothing_queued()


def test_repeated_keys_inside_the_payload_are_the_vendors_business(ingest: IngestServer, client: httpx.Client) -> None:
    body = data_with(b'{"action": 1, "action": 2, "data": {"data": 1, "data": 2}}')
    response = client.post(ingest.url(), content=body, headers=gxm_headers())
    assert response.status_code == 202, response.text


def test_huge_number_inside_a_payload_float_is_kept(ingest: IngestServer, client: httpx.Client) -> None:
    # 10,000 digits after the point is still a valid JSON number: accepted and stored as sent.
    response = client.post(ingest.url(), content=data_with(b'{"n": 1.' + b"5" * 10_000 + b"}"), headers=gxm_headers())
    assert response.status_code == 202, response.text


def test_ten_megabyte_string_is_413(ingest: IngestServer, client: httpx.Client) -> None:
    body = gxm_body(payload={"s": "x" * 10_000_000})
    response = client.post(ingest.url(), content=body, headers=gxm_headers())
    assert_error(response, 413, "ERR:MSG:BODY_TOO_LARGE")
    ingest.assert_nothing_queued()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_stays_bounded_under_large_bad_bodies(ingest: IngestServer, client: httpx.Client) -> None:
    pid = ingest.process.popen.pid
    big = gxm_body(payload={"s": "x" * 3_000_000})
    deep = data_with(b"[" * 500_000 + b"]" * 500_000)[:1_000_000]
    client.post(ingest.url(), content=big, headers=gxm_headers())
    before = rss_kib(pid)
    started = time.monotonic()
    for i in range(40):
        body = big if i % 2 else deep
        chunked = i % 4 == 1
        content: Any = iter([body[j : j + 65536] for j in range(0, len(body), 65536)]) if chunked else body
        response = client.post(ingest.url(), content=content, headers=gxm_headers())
        assert response.status_code in (400, 413), response.text
    after = rss_kib(pid)
    assert time.monotonic() - started < 30
    assert after - before < 64 * 1024, (before, after)
    ingest.assert_nothing_queued()


# --- raw sockets: lying lengths and slow senders ---


def connect(ingest: IngestServer) -> socket.socket:
    port = ingest.config.settings.server.port
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def request_head(path: str, length: int | None, extra: str = "") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"X-GXM-APISIGNATURE: {SIGNATURE}",
        "Content-Length: " + str(length) if length is not None else "Transfer-Encoding: chunked",
    ]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length, as the server sent it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def assert_raw_error(response: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got, headers, body = response
    assert got == status, body
    document = msgspec.json.decode(body)
    assert set(document) == {"data", "meta", "warnings"}
    assert document["meta"]["code"] == code
    assert headers["x-request-id"]


def test_content_length_shorter_than_the_body(ingest: IngestServer) -> None:
    """The declared bytes are read as the body; the rest is not HTTP.

    Which 400 comes first depends on whether the server's parser or ingest
    sees its garbage first (`HTTP` for the rest, `JSON` for the truncated
    body); either way an envelope, never a 5xx, nothing queued.
    """
    body = gxm_body()
    with connect(ingest) as sock:
        sock.sendall(request_head("/webhooks/gxm", 20) + body)
        status, headers, raw = read_response(sock)
    assert status == 400
    assert msgspec.json.decode(raw)["meta"]["code"] in (VALIDATION + "HTTP", VALIDATION + "JSON")
    assert headers["x-request-id"]
    ingest.assert_nothing_queued()


def test_content_length_shorter_than_a_body_sent_later(ingest: IngestServer) -> None:
    body = gxm_body()
    with connect(ingest) as sock:
        sock.sendall(request_head("/webhooks/gxm", 20) + body[:20])
        assert_raw_error(read_response(sock), 400, VALIDATION + "JSON")
        with contextlib.suppress(OSError):  # the server may already have closed: also fine
            sock.sendall(body[20:])
    ingest.assert_nothing_queued()


@pytest.mark.parametrize(
    "head",
    [
        b"POST /webhooks/gxm HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /webhooks/gxm HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
        b"POST /webhooks/gxm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /webhooks/gxm HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ],
    ids=["length-not-a-number", "two-lengths", "bad-chunk-size", "nul-in-header", "tls-hello"],
)
def test_malformed_http_gets_a_400_envelope(ingest: IngestServer, head: bytes) -> None:
    with connect(ingest) as sock:
        sock.sendall(head)
        assert_raw_error(read_response(sock), 400, VALIDATION + "HTTP")
    ingest.assert_nothing_queued()


def test_content_length_longer_than_the_body_times_out(ingest: IngestServer) -> None:
    body = gxm_body()
    with connect(ingest) as sock:
        started = time.monotonic()
        sock.sendall(request_head("/webhooks/gxm", len(body) + 100) + body)
        response = read_response(sock)
        waited = time.monotonic() - started
    assert_raw_error(response, 408, "ERR:MSG:TIMEOUT")
    assert 0.9 <= waited < 5, waited
    ingest.assert_nothing_queued()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_slow_sender_gets_408_after_the_body_timeout(ingest: IngestServer, chunked: bool) -> None:
    body = gxm_body()
    with connect(ingest) as sock:
        started = time.monotonic()
        sock.sendall(request_head("/webhooks/gxm", None if chunked else len(body)))
        sock.settimeout(0.2)
        response = None
        for i in range(len(body)):
            piece = body[i : i + 1]
            try:
                sock.sendall(b"1\r\n" + piece + b"\r\n" if chunked else piece)
                response = read_response(sock)
                break
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(10)
        if response is None:
            response = read_response(sock)
        waited = time.monotonic() - started
    assert_raw_error(response, 408, "ERR:MSG:TIMEOUT")
    assert 0.9 <= waited < 5, waited
    ingest.assert_nothing_queued()


def test_sender_that_stops_mid_body_and_leaves(ingest: IngestServer, client: httpx.Client) -> None:
    body = gxm_body()
    with connect(ingest) as sock:
        sock.sendall(request_head("/webhooks/gxm", len(body)) + body[:10])
    time.sleep(0.3)
    ingest.assert_nothing_queued()
    # The server is still fine for the next caller.
    assert client.post(ingest.url(), content=gxm_body(), headers=gxm_headers()).status_code == 202
