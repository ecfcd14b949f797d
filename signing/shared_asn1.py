"""asn1crypto objects that several threads share must be parsed before they are shared.

asn1crypto parses lazily and without locks: two threads touching a fresh ``Certificate`` (say
``cert.public_key.sha1`` inside pyHanko's validator) can each see the other's half-built children and
fail with ``KeyError: 'No field numbered N …'``. Seen under load as a genuine document reported as
damaged. Everything kyso caches across requests (trust anchors, signer chains, stored OCSP responses
and CRLs) goes through :func:`shareable` once, in the thread that builds it.
"""
from __future__ import annotations

from typing import TypeVar

from asn1crypto import core, ocsp as asn1_ocsp

T = TypeVar("T", bound=core.Asn1Value)


def shareable(value: T) -> T:
    """Parse ``value`` completely now (its nested, separately parsed parts too) and return it."""
    value.native  # noqa: B018 - walks and caches every child
    if isinstance(value, asn1_ocsp.OCSPResponse) and value["response_bytes"].native is not None:
        value.basic_ocsp_response.native  # noqa: B018 - the inner response is parsed on its own
    return value
