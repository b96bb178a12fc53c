"""Schemathesis over `/schema/openapi.json` against a real `hookyard serve`: no 5xx, no answer
that breaks its own documented shape, status or content type. Bounded: a few examples a route.

`/v1/stream` is left out (an endless response); `tests/service/api/test_stream.py` covers it.
"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.service.api.conftest import ADMIN

CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]


def test_api_conforms_to_its_openapi_document(server):
    """Each documented operation, a dozen generated cases each (derandomized, so reproducible).

    Driven with Hypothesis directly: schemathesis' lazy `from_fixture` loader does not run
    under pytest 9 here, and the schema only exists once the server fixture is up.
    """
    api = schemathesis.openapi.from_url(f"{server}/schema/openapi.json").exclude(path="/v1/stream")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 7

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case):
            case.call_and_validate(base_url=server, headers=ADMIN, checks=CHECKS)

        run()


def test_document_describes_every_route_with_errors(server):
    document = httpx.get(f"{server}/schema/openapi.json", timeout=10).json()
    paths = document["paths"]
    for path in (
        "/v1/events",
        "/v1/events/{event_id}",
        "/v1/events/{event_id}/replay",
        "/v1/stats",
        "/v1/handlers",
        "/v1/stream",
        "/v1/deliveries",
        "/v1/replays",
        "/v1/replays/{replay_id}",
        "/v1/rejections",
        "/webhooks/{source}",
        "/health/live",
        "/health/ready",
    ):
        assert path in paths, path
    listing = paths["/v1/events"]["get"]["responses"]
    assert {"200", "400", "401", "429"} <= set(listing)
    assert listing["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert {"202", "401", "413", "415"} <= set(paths["/webhooks/{source}"]["post"]["responses"])
    assert "403" in paths["/v1/events/{event_id}/replay"]["post"]["responses"]
    assert {"200", "201", "400", "403"} <= set(paths["/v1/replays"]["post"]["responses"])
    assert not any(path.startswith("/ui") for path in paths)  # the console is not part of the API
