"""Signature schemes: how a source proves it sent a webhook, one module per scheme.

Each module defines one class behind `SignatureScheme` (usually a
`BaseScheme`) and names it `SCHEME`; `SCHEMES` is built from the modules, so adding a scheme is adding
a module (settings accept its name, `hookyard sign` and the OpenAPI document
know its header). A scheme that does not cover the body (`needs_body =
False`) is checked from the headers before any body byte is read; one that
does is checked right after the bounded body read, before parsing. Checks
take the same time whatever the header holds: both sides are hashed to
fixed-length digests and every active secret is compared, with no early
return.

The schemes live in `schemas` because both processes use them: ingest
verifies, and forwards sign what workers send.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.modules import collect
from schemas.signatures._base import DEFAULT_TOLERANCE_SECONDS, SignatureScheme

__all__ = ["DEFAULT_TOLERANCE_SECONDS", "SCHEMES", "SIGNATURE_HEADERS", "SignatureScheme", "scheme_for"]


def _collect() -> dict[str, type[SignatureScheme]]:
    return {scheme.name: scheme for scheme in collect(__path__, __name__, "SCHEME")}


SCHEMES = _collect()
"""Scheme name -> class, one per module of this package."""


SIGNATURE_HEADERS = frozenset(header.lower() for scheme in SCHEMES.values() for header in scheme.signature_headers)
"""Lower-case names of every header that carries a signature value, whatever the source's scheme: never kept."""


def scheme_for(
    name: str, secrets: Sequence[str], tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> SignatureScheme:
    """The scheme checking these secrets; ValueError if one of them is unusable for it."""
    return SCHEMES[name](secrets, tolerance_seconds)
