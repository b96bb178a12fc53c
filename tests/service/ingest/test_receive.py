"""Every row of the ingest check table (CONTRACT section 4), against a real `hookyard serve`.

Each rejection is checked for what a vendor sees (status, envelope, `meta.code`,
`X-Request-ID`) and for what it must not cause (nothing queued, no fingerprint).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import SECRET, SIGNATURE, Config, Worker, gxm_body, gxm_headers
from tests.service.conftest import OTHER_SECRET, IngestServer, assert_error

CODE_SIGNATURE = "ERR:MSG:SIGNATURE"
CODE_TOO_LARGE = "ERR:MSG:BODY_TOO_LARGE"
CODE_MEDIA = "ERR:MSG:UNSUPPORTED_MEDIA_TYPE"
MAX_BODY = 1_048_576


def validation(what: str) -> str:
    return f"ERR:MSG:VALIDATION:{what}"


def envelope(data: Any) -> bytes:
    return msgspec.json.encode({"data": data, "meta": {}, "warnings": {}})


def good_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"sent_at": int(time.time()), "action": "LOCATION:CREATED", "payload": {"company_id": 1}}
    data.update(changes)
    return data


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def test_unknown_source_is_404(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url("nope"), content=gxm_body(), headers={**gxm_headers(), "X-Request-ID": "abc-1"})
    assert_error(response, 404, "ERR:MSG:NOT_FOUND", request_id="abc-1")
    ingest.assert_nothing_queued()


def test_nested_path_names_no_source(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(f"{ingest.base}/webhooks/gxm/extra", content=gxm_body(), headers=gxm_headers())
    assert_error(response, 404, "ERR:MSG:NOT_FOUND")
    ingest.assert_nothing_queued()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405(ingest: IngestServer, client: httpx.Client, method: str) -> None:
    response = client.request(method, ingest.url(), content=gxm_body(), headers=gxm_headers())
    assert_error(response, 405, "ERR:MSG:METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    ingest.assert_nothing_queued()


def test_success_is_202_with_the_exact_shape(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url(), content=gxm_body(), headers={**gxm_headers(), "X-Request-ID": "req-42"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {
        "data": {"id": body["data"]["id"], "status": "queued", "duplicate": False},
        "meta": {},
        "warnings": {},
    }
    assert isinstance(body["data"]["id"], str)
    assert len(body["data"]["id"]) >= 16
    assert response.headers["x-request-id"] == "req-42"
    assert ingest.queued() == 1


def test_request_id_is_made_when_not_sent(ingest: IngestServer, client: httpx.Client) -> None:
    first = client.post(ingest.url(), content=gxm_body(), headers=gxm_headers())
    second = client.post(ingest.url("nope"), content=gxm_body(), headers=gxm_headers())
    assert first.headers["x-request-id"]
    assert second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


# --- IP allow-list and the trusted proxy (the shared server trusts 127.0.0.1 only) ---


def from_address(local: str) -> httpx.Client:
    """A client whose connections come from `local` (another loopback address), not 127.0.0.1."""
    return httpx.Client(timeout=10, transport=httpx.HTTPTransport(local_address=local))


def test_address_outside_allow_list_is_403(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url("locked"), content=gxm_body(), headers={**gxm_headers(), "X-Request-ID": "ip-1"})
    assert_error(response, 403, "ERR:MSG:FORBIDDEN", request_id="ip-1")
    ingest.assert_nothing_queued()


def test_forwarded_for_from_the_trusted_proxy_is_believed(ingest: IngestServer, client: httpx.Client) -> None:
    headers = {**gxm_headers(), "X-Forwarded-For": "203.0.113.7"}
    response = client.post(ingest.url("locked"), content=gxm_body(), headers=headers)
    assert response.status_code == 202, response.text


def test_forwarded_for_is_read_right_to_left_past_trusted_hops(ingest: IngestServer, client: httpx.Client) -> None:
    # The vendor's address is the rightmost untrusted hop; anything left of it the client wrote itself.
    spoofed = {**gxm_headers(), "X-Forwarded-For": "203.0.113.7, 198.51.100.9"}
    assert_error(client.post(ingest.url("locked"), content=gxm_body(), headers=spoofed), 403, "ERR:MSG:FORBIDDEN")
    chained = {**gxm_headers(), "X-Forwarded-For": "198.51.100.9, 203.0.113.7, 127.0.0.1"}
    response = client.post(ingest.url("locked"), content=gxm_body(action="LOCATION:UPDATED"), headers=chained)
    assert response.status_code == 202, response.text


def test_forwarded_for_from_anyone_else_is_ignored(ingest: IngestServer) -> None:
    headers = {**gxm_headers(), "X-Forwarded-For": "203.0.113.7"}
    with from_address("127.0.0.2") as stranger:
        response = stranger.post(ingest.url("locked"), content=gxm_body(), headers=headers)
    assert_error(response, 403, "ERR:MSG:FORBIDDEN")
    ingest.assert_nothing_queued()


def test_peer_address_itself_is_allowed(ingest: IngestServer) -> None:
    with from_address("127.0.0.2") as peer:
        response = peer.post(ingest.url("loopback2"), content=gxm_body(), headers=gxm_headers())
    assert response.status_code == 202, response.text


def test_garbled_forwarded_for_falls_back_to_the_proxy(ingest: IngestServer, client: httpx.Client) -> None:
    headers = {**gxm_headers(), "X-Forwarded-For": "not-an-ip"}
    assert_error(client.post(ingest.url("locked"), content=gxm_body(), headers=headers), 403, "ERR:MSG:FORBIDDEN")


def test_ip_check_comes_before_the_signature(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url("locked"), content=gxm_body(), headers=gxm_headers(signature="0" * 64))
    assert_error(response, 403, "ERR:MSG:FORBIDDEN")


# --- signatures ---


def test_missing_signature_is_401(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(
        ingest.url(), content=gxm_body(), headers={"Content-Type": "application/json", "X-Request-ID": "sig-0"}
    )
    assert_error(response, 401, CODE_SIGNATURE, request_id="sig-0")
    ingest.assert_nothing_queued()


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="empty"),
        pytest.param("0" * 64, id="wrong-right-length"),
        pytest.param(SIGNATURE[:-1], id="one-short"),
        pytest.param(SIGNATURE + "0", id="one-long"),
        pytest.param(SIGNATURE * 40, id="very-long"),
        pytest.param(SECRET, id="the-secret-itself"),
        pytest.param(hashlib.sha256(b"other").hexdigest(), id="other-secret"),
        pytest.param("z" * 64, id="not-hex"),
        pytest.param("sha256=" + SIGNATURE, id="prefixed"),
    ],
)
def test_bad_signature_is_401(ingest: IngestServer, client: httpx.Client, signature: str) -> None:
    response = client.post(ingest.url(), content=gxm_body(), headers=gxm_headers(signature=signature))
    body = assert_error(response, 401, CODE_SIGNATURE)
    assert SIGNATURE not in response.text
    assert body["warnings"] == {}
    ingest.assert_nothing_queued()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("é".encode() * 32, id="utf8"),
        pytest.param(b"\xff\xfe" * 32, id="latin1-bytes"),
        pytest.param(SIGNATURE[:-1].encode() + b"\xe9", id="almost-right"),
    ],
)
def test_non_ascii_signature_is_401_never_500(ingest: IngestServer, client: httpx.Client, raw: bytes) -> None:
    headers = [(b"Content-Type", b"application/json"), (b"X-GXM-APISIGNATURE", raw)]
    response = client.post(ingest.url(), content=gxm_body(), headers=headers)
    assert_error(response, 401, CODE_SIGNATURE)
    ingest.assert_nothing_queued()


def test_uppercase_hex_signature_is_accepted(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url(), content=gxm_body(), headers=gxm_headers(signature=SIGNATURE.upper()))
    assert response.status_code == 202, response.text


def test_both_rotated_secrets_are_accepted(ingest: IngestServer, client: httpx.Client) -> None:
    old = client.post(ingest.url(), content=gxm_body(payload={"n": 1}), headers=gxm_headers())
    new_signature = hashlib.sha256(OTHER_SECRET.encode()).hexdigest()
    new = client.post(ingest.url(), content=gxm_body(payload={"n": 2}), headers=gxm_headers(signature=new_signature))
    assert (old.status_code, new.status_code) == (202, 202), (old.text, new.text)
    assert ingest.queued() == 2


# --- body size, both with an honest Content-Length and chunked ---


def over_limit_body() -> bytes:
    return gxm_body(payload={"blob": "x" * (MAX_BODY + 10)})


def test_body_over_limit_with_content_length_is_413(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url(), content=over_limit_body(), headers={**gxm_headers(), "X-Request-ID": "big"})
    assert_error(response, 413, CODE_TOO_LARGE, request_id="big")
    ingest.assert_nothing_queued()


def test_chunked_body_over_limit_is_413(ingest: IngestServer, client: httpx.Client) -> None:
    body = over_limit_body()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = client.post(ingest.url(), content=chunks(), headers=gxm_headers())
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, CODE_TOO_LARGE)
    ingest.assert_nothing_queued()


def test_chunked_body_under_limit_is_accepted(ingest: IngestServer, client: httpx.Client) -> None:
    body = gxm_body()
    response = client.post(ingest.url(), content=iter([body[:10], body[10:]]), headers=gxm_headers())
    assert response.status_code == 202, response.text


def test_body_exactly_at_limit_is_not_413(ingest: IngestServer, client: httpx.Client) -> None:
    filler = MAX_BODY - len(gxm_body(payload={"blob": ""}))
    body = gxm_body(payload={"blob": "x" * filler})
    assert len(body) == MAX_BODY
    response = client.post(ingest.url(), content=body, headers=gxm_headers())
    assert response.status_code == 202, response.text


# --- content type ---


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded", "json"])
def test_wrong_content_type_is_415(ingest: IngestServer, client: httpx.Client, content_type: str | None) -> None:
    headers = {"X-GXM-APISIGNATURE": SIGNATURE}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(ingest.url(), content=gxm_body(), headers=headers)
    assert_error(response, 415, CODE_MEDIA)
    ingest.assert_nothing_queued()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/vnd.gxm+json",
        "APPLICATION/JSON",
        "application/json;charset=UTF-8",
    ],
)
def test_json_content_types_are_accepted(ingest: IngestServer, client: httpx.Client, content_type: str) -> None:
    response = client.post(ingest.url(), content=gxm_body(), headers=gxm_headers(content_type=content_type))
    assert response.status_code == 202, response.text


# --- validation: one code per field ---


VALIDATION_CASES = [
    pytest.param(b'{"data": ', "JSON", id="invalid-json"),
    pytest.param(b"", "JSON", id="empty-body"),
    pytest.param(b"[1, 2]", "BODY", id="array"),
    pytest.param(b'"text"', "BODY", id="string"),
    pytest.param(b"null", "BODY", id="null"),
    pytest.param(msgspec.json.encode({"meta": {}}), "DATA", id="data-missing"),
    pytest.param(envelope([1]), "DATA", id="data-array"),
    pytest.param(envelope("x"), "DATA", id="data-string"),
    pytest.param(envelope(None), "DATA", id="data-null"),
    pytest.param(envelope({"sent_at": 1, "payload": {}}), "ACTION", id="action-missing"),
    pytest.param(envelope(good_data(action="location:created")), "ACTION", id="action-lowercase"),
    pytest.param(envelope(good_data(action="LOCATION")), "ACTION", id="action-one-part"),
    pytest.param(envelope(good_data(action="LOCATION:")), "ACTION", id="action-empty-part"),
    pytest.param(envelope(good_data(action="A:" + "B" * 127)), "ACTION", id="action-129-chars"),
    pytest.param(envelope(good_data(action=5)), "ACTION", id="action-number"),
    pytest.param(envelope(good_data(action="LOCATION:CREATED\n")), "ACTION", id="action-newline"),
    pytest.param(envelope({"action": "A:B", "payload": {}}), "SENT_AT", id="sent_at-missing"),
    pytest.param(envelope(good_data(sent_at="1564662600")), "SENT_AT", id="sent_at-string"),
    pytest.param(envelope(good_data(sent_at=-1)), "SENT_AT", id="sent_at-negative"),
    pytest.param(envelope(good_data(sent_at=253_402_300_800)), "SENT_AT", id="sent_at-too-big"),
    pytest.param(envelope(good_data(sent_at=1564662600.0)), "SENT_AT", id="sent_at-float"),
    pytest.param(envelope(good_data(sent_at=True)), "SENT_AT", id="sent_at-bool"),
    pytest.param(envelope(good_data(sent_at=None)), "SENT_AT", id="sent_at-null"),
    pytest.param(envelope({"sent_at": 1, "action": "A:B"}), "PAYLOAD", id="payload-missing"),
    pytest.param(envelope(good_data(payload=[1])), "PAYLOAD", id="payload-array"),
    pytest.param(envelope(good_data(payload="{}")), "PAYLOAD", id="payload-string"),
    pytest.param(envelope(good_data(payload=None)), "PAYLOAD", id="payload-null"),
]


@pytest.mark.parametrize(("body", "what"), VALIDATION_CASES)
def test_invalid_body_is_400_naming_the_field(
    ingest: IngestServer, client: httpx.Client, body: bytes, what: str
) -> None:
    response = client.post(ingest.url(), content=body, headers={**gxm_headers(), "X-Request-ID": f"v-{what}"})
    assert_error(response, 400, validation(what), request_id=f"v-{what}")
    ingest.assert_nothing_queued()


@pytest.mark.parametrize("edge", [0, 253_402_300_799])
def test_sent_at_edges_are_accepted(ingest: IngestServer, client: httpx.Client, edge: int) -> None:
    response = client.post(ingest.url(), content=envelope(good_data(sent_at=edge)), headers=gxm_headers())
    assert response.status_code == 202, response.text


def test_action_of_128_chars_and_unknown_keys_are_accepted(ingest: IngestServer, client: httpx.Client) -> None:
    action = "A:" + "B" * 126
    body = msgspec.json.encode({"data": {**good_data(action=action), "extra": 1}, "meta": {"x": 1}, "other": []})
    response = client.post(ingest.url(), content=body, headers=gxm_headers())
    assert response.status_code == 202, response.text


def test_stale_sent_at_is_400_when_max_age_is_set(ingest: IngestServer, client: httpx.Client) -> None:
    stale = client.post(ingest.url("fresh"), content=gxm_body(sent_at=int(time.time()) - 301), headers=gxm_headers())
    assert_error(stale, 400, validation("SENT_AT"))
    ingest.assert_nothing_queued()
    recent = client.post(ingest.url("fresh"), content=gxm_body(sent_at=int(time.time()) - 250), headers=gxm_headers())
    assert recent.status_code == 202, recent.text
    # Without max_age_seconds an old event is fine: replays of old history are the vendor's business.
    old = client.post(ingest.url(), content=gxm_body(sent_at=1564662600), headers=gxm_headers())
    assert old.status_code == 202, old.text


# --- the order of the checks ---


def test_bad_signature_wins_over_oversize(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url(), content=over_limit_body(), headers=gxm_headers(signature="0" * 64))
    assert_error(response, 401, CODE_SIGNATURE)


def test_oversize_wins_over_wrong_content_type(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url(), content=over_limit_body(), headers=gxm_headers(content_type="text/plain"))
    assert_error(response, 413, CODE_TOO_LARGE)


def test_wrong_content_type_wins_over_invalid_json(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url(), content=b"not json", headers=gxm_headers(content_type="text/plain"))
    assert_error(response, 415, CODE_MEDIA)


def test_unknown_source_wins_over_everything(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url("nope"), content=b"x", headers={"Content-Type": "text/plain"})
    assert_error(response, 404, "ERR:MSG:NOT_FOUND")


def test_bad_signature_wins_over_invalid_body(ingest: IngestServer, client: httpx.Client) -> None:
    response = client.post(ingest.url(), content=b"{", headers={"Content-Type": "application/json"})
    assert_error(response, 401, CODE_SIGNATURE)


# --- duplicates ---


def test_same_data_other_whitespace_and_key_order_is_a_duplicate(ingest: IngestServer, client: httpx.Client) -> None:
    first = client.post(
        ingest.url(),
        content=b'{"data": {"sent_at": 1564662600, "action": "LOCATION:CREATED", "payload": {"a": 1, "b": [1, 2]}}}',
        headers=gxm_headers(),
    )
    again = client.post(
        ingest.url(),
        content=b'{"meta":{"retry":1},"data":{"payload":{"b":[1,2],"a":1},\n'
        b' "action":"LOCATION:CREATED","sent_at":1564662600}}',
        headers=gxm_headers(),
    )
    assert first.status_code == 202, first.text
    assert again.status_code == 200, again.text
    assert again.json() == {
        "data": {"id": first.json()["data"]["id"], "status": "queued", "duplicate": True},
        "meta": {},
        "warnings": {},
    }
    assert ingest.queued() == 1


def test_different_data_is_a_new_event(ingest: IngestServer, client: httpx.Client) -> None:
    first = client.post(ingest.url(), content=gxm_body(payload={"a": 1}, sent_at=10), headers=gxm_headers())
    other = client.post(ingest.url(), content=gxm_body(payload={"a": 2}, sent_at=10), headers=gxm_headers())
    assert (first.status_code, other.status_code) == (202, 202)
    assert first.json()["data"]["id"] != other.json()["data"]["id"]
    assert ingest.queued() == 2


def test_same_data_on_another_source_is_not_a_duplicate(ingest: IngestServer, client: httpx.Client) -> None:
    body = gxm_body(sent_at=10)
    first = client.post(ingest.url(), content=body, headers=gxm_headers())
    other = client.post(ingest.url("loopback2"), content=body, headers=gxm_headers())
    assert first.status_code == 202
    # loopback2 only admits 127.0.0.2, which proves the source is checked before the fingerprint.
    assert_error(other, 403, "ERR:MSG:FORBIDDEN")
    with from_address("127.0.0.2") as peer:
        accepted = peer.post(ingest.url("loopback2"), content=body, headers=gxm_headers())
    assert accepted.status_code == 202, accepted.text
    assert ingest.queued() == 2


# --- stored exactly, once (a fresh server and a real worker, on SQLite and PostgreSQL) ---


def stored(config: Config) -> list[tuple[str, str, str]]:
    engine = create_engine(config.settings.database.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select id, payload, body from events order by seq")).all()
    finally:
        engine.dispose()
    return [(row[0], row[1], row[2]) for row in rows]


def test_duplicates_are_stored_once(config: Config, server: str, worker: Worker, redis_client: Any) -> None:
    url = f"{server}/webhooks/gxm"
    first = httpx.post(url, content=gxm_body(payload={"a": 1}, sent_at=5), headers=gxm_headers())
    worker.drain()
    again = httpx.post(url, content=b" " + gxm_body(payload={"a": 1}, sent_at=5), headers=gxm_headers())
    assert again.status_code == 200, again.text
    assert again.json()["data"] == {"id": first.json()["data"]["id"], "status": "queued", "duplicate": True}
    assert redis_client.llen("rq:queue:hookyard") == 0
    worker.drain()
    assert [row[0] for row in stored(config)] == [first.json()["data"]["id"]]


def test_nul_inside_a_payload_string_round_trips_exactly(config: Config, server: str, worker: Worker) -> None:
    payload = '{ "note" : "a\\u0000b",  "emoji": "\\ud83d\\ude00", "n": 1.50 }'
    body = ('{"data": {"sent_at": 1564662600, "action": "LOCATION:CREATED", "payload": ' + payload + "}}").encode()
    response = httpx.post(f"{server}/webhooks/gxm", content=body, headers=gxm_headers())
    assert response.status_code == 202, response.text
    worker.drain()
    rows = stored(config)
    assert [(row[0], row[1], row[2]) for row in rows] == [(response.json()["data"]["id"], payload, body.decode())]
