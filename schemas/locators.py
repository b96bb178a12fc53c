"""Locators: where a vendor's action parts, event id and time are in a request.

`json:<RFC 6901 pointer>` reads the decoded body (`json:/type`,
`json:/event/type`; `~1` is `/`, `~0` is `~`), `header:<name>` a request
header (case-insensitive), `=<literal>` is the literal itself. Parsed once
from the configuration, so a bad locator stops start-up with the key named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What a locator finds when the body or the headers do not hold its value."""


class Locator(msgspec.Struct, frozen=True):
    text: str
    """As configured, for messages."""
    kind: Literal["json", "header", "literal"]
    tokens: tuple[str, ...] = ()
    """The pointer's reference tokens, unescaped (`json:`)."""
    header: bytes = b""
    """The lower-case header name (`header:`)."""
    literal: str = ""

    def find(self, document: Any, headers: Mapping[bytes, bytes]) -> Any:
        """The located value (a header's as text), or `MISSING`."""
        if self.kind == "literal":
            return self.literal
        if self.kind == "header":
            value = headers.get(self.header)
            return MISSING if value is None else value.decode("latin-1").strip()
        return resolve(self.tokens, document)


def parse_locator(text: str) -> Locator:
    """ValueError saying what is wrong, for a `ConfigError` that names the key."""
    if text.startswith("json:"):
        return Locator(text, "json", tokens=parse_pointer(text.removeprefix("json:")))
    if text.startswith("header:"):
        name = text.removeprefix("header:")
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{text!r}: `header:` needs a header name")
        return Locator(text, "header", header=name.lower().encode())
    if text.startswith("="):
        if len(text) == 1:
            raise ValueError("'=' needs a literal after it")
        return Locator(text, "literal", literal=text[1:])
    raise ValueError(f"{text!r} is not a locator: use json:<RFC 6901 pointer>, header:<name> or =<literal>")


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """RFC 6901: "" is the whole document, otherwise `/`-separated tokens with `~0`/`~1` escapes."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer (RFC 6901): it must start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise ValueError(f"{pointer!r}: '~' must be followed by 0 or 1 (RFC 6901)")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


def resolve(tokens: tuple[str, ...], document: Any) -> Any:
    value = document
    for token in tokens:
        if isinstance(value, dict):
            if token not in value:
                return MISSING
            value = value[token]
        elif isinstance(value, list):
            if not _INDEX.match(token) or int(token) >= len(value):
                return MISSING
            value = value[int(token)]
        else:
            return MISSING
    return value
