"""OpenAPI pieces: error responses for each route, security schemes, and the ingest route.

Ingest is a raw ASGI mount (Litestar leaves mounts out of the document), so
`document_ingest` adds `POST /webhooks/{source}` by hand, with the same
request, answer and error shapes the handler really uses.
"""

from __future__ import annotations

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from schemas.api import ErrorEnvelope, RateLimitedEnvelope
from schemas.signatures import SCHEMES
from schemas.wire import ACTION_PATTERN, MAX_SENT_AT

_DESCRIPTIONS = {
    400: "A bad parameter or body; `meta.code` names it (`ERR:MSG:VALIDATION:LIMIT`)",
    401: "Missing or unknown API key (`ERR:MSG:UNAUTHORIZED`)",
    403: "A read key on an admin call (`ERR:MSG:FORBIDDEN`)",
    404: "Unknown or malformed id (`ERR:MSG:NOT_FOUND`)",
    429: "Over the key's rate limit (`ERR:MSG:RATELIMITTED`); see `Retry-After`",
    500: "Internal error (`ERR:MSG:INTERNAL`); no details are given",
    503: "A dependency is unavailable (`ERR:MSG:UNAVAILABLE`); see `Retry-After`",
}

SECURITY: list[SecurityRequirement] = [{"bearer": []}, {"apiKey": []}]
SECURITY_COMPONENTS = Components(
    security_schemes={
        "bearer": SecurityScheme(type="http", scheme="bearer", description="`Authorization: Bearer <key>`"),
        "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
    }
)


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Every route answers 401, 429 and 500 besides its own errors."""
    wanted = sorted({401, 429, 500, *statuses})
    return {
        status: ResponseSpec(
            data_container=RateLimitedEnvelope if status == 429 else ErrorEnvelope,
            description=_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in wanted
    }


def _envelope(data: Schema | Reference) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        properties={"data": data, "meta": Schema(type=OpenAPIType.OBJECT), "warnings": Schema(type=OpenAPIType.OBJECT)},
        required=["data", "meta", "warnings"],
    )


def _json(schema: Schema | Reference, description: str) -> OpenAPIResponse:
    return OpenAPIResponse(description=description, content={"application/json": OpenAPIMediaType(schema=schema)})


def document_ingest(openapi: OpenAPI) -> None:
    """Add `POST /webhooks/{source}` (served outside Litestar) to the document."""
    error = Reference(ref="#/components/schemas/ErrorEnvelope")
    accepted = _envelope(
        Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "id": Schema(type=OpenAPIType.STRING, description="The event id (UUIDv7)"),
                "status": Schema(type=OpenAPIType.STRING, enum=["queued"]),
                "duplicate": Schema(type=OpenAPIType.BOOLEAN),
            },
            required=["id", "status", "duplicate"],
        )
    )
    body = Schema(
        type=OpenAPIType.OBJECT,
        properties={
            "data": Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "sent_at": Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=MAX_SENT_AT),
                    "action": Schema(type=OpenAPIType.STRING, pattern=ACTION_PATTERN, max_length=128),
                    "payload": Schema(type=OpenAPIType.OBJECT),
                },
                required=["sent_at", "action", "payload"],
            ),
            "meta": Schema(type=OpenAPIType.OBJECT),
            "warnings": Schema(type=OpenAPIType.OBJECT),
        },
        required=["data"],
    )
    errors = {
        "400": "Invalid JSON or fields (`ERR:MSG:VALIDATION:<WHAT>`)",
        "401": "Missing or wrong signature (`ERR:MSG:SIGNATURE`)",
        "403": "Client IP not allowed (`ERR:MSG:FORBIDDEN`)",
        "404": "Unknown source (`ERR:MSG:NOT_FOUND`)",
        "405": "Not POST (`ERR:MSG:METHOD_NOT_ALLOWED`)",
        "413": "Body over `server.max_body_bytes` (`ERR:MSG:BODY_TOO_LARGE`)",
        "415": "Not a JSON content type (`ERR:MSG:UNSUPPORTED_MEDIA_TYPE`)",
        "503": "Neither Redis nor the spool can take the event (`ERR:MSG:UNAVAILABLE`); see `Retry-After`",
    }
    responses: dict[str, OpenAPIResponse | Reference] = {
        "202": _json(accepted, "Queued (or spooled: `warnings.queue` is `spooled`)"),
        "200": OpenAPIResponse(
            description="A re-delivery of a stored event (`duplicate` is true, the first id); or, as `text/plain`, "
            "the `challenge` of a signed Slack `url_verification` (nothing stored)",
            content={
                "application/json": OpenAPIMediaType(schema=accepted),
                "text/plain": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            },
        ),
    }
    responses.update({status: _json(error, text) for status, text in errors.items()})
    openapi.paths = openapi.paths or {}
    openapi.paths["/webhooks/{source}"] = PathItem(
        post=Operation(
            tags=["ingest"],
            summary="Receive a signed webhook",
            description="Checks the source, client IP, signature (the headers of the source's scheme), "
            "size, content type and body, in that order, then queues the event. The body shown is a `gxm` "
            "source's; a `format = \"json\"` source takes any JSON object, its action, id and time found by "
            "the source's locators (CONTRACT section 7).",
            operation_id="IngestWebhook",
            parameters=[
                Parameter(name="source", param_in="path", required=True, schema=Schema(type=OpenAPIType.STRING)),
                *(
                    Parameter(
                        name=scheme.header,
                        param_in="header",
                        required=False,
                        schema=Schema(type=OpenAPIType.STRING),
                        description=f"the signature of sources whose scheme is `{scheme.name}`",
                    )
                    for scheme in SCHEMES.values()
                ),
            ],
            request_body=RequestBody(content={"application/json": OpenAPIMediaType(schema=body)}, required=True),
            responses=responses,
            security=[],
        )
    )
