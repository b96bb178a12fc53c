"""RQ serializer: JSON through msgspec. Never pickle: a job is data, not code."""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class JSONSerializer:
    @staticmethod
    def dumps(obj: Any) -> bytes:
        return _encoder.encode(obj)

    @staticmethod
    def loads(data: bytes | str) -> Any:
        return _decoder.decode(data)
