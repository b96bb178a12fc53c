"""uvicorn's httptools protocol, answering malformed HTTP with our envelope instead of plain text.

When the bytes on the wire are not HTTP (a `Content-Length` shorter than the
body leaves the rest to be parsed as the next request, a bad chunk size, a
header with a NUL), uvicorn answers before any ASGI app runs. CONTRACT
section 4 still holds there: the envelope, a `meta.code` and an
`X-Request-ID`, then the connection is closed.
"""

from __future__ import annotations

import os

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from schemas.errors import Invalid

_BODY = msgspec.json.encode(Invalid("HTTP", "malformed HTTP request").envelope())


class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(_BODY)).encode() + b"\r\n",
            b"x-request-id: " + os.urandom(12).hex().encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            _BODY,
        ]
        self.transport.write(b"".join(head))
        self.transport.close()
