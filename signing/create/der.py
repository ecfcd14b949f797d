"""Tiny DER writers for the hot paths (CMS signatures, timestamp tokens).

asn1crypto is used to parse and to build anything unusual; but building the same few structures
as asn1crypto objects for every signature re-serialises certificates and names each time, which
was measured as most of a signature's cost. These helpers concatenate DER parts prepared once.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

from asn1crypto import algos


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + length(len(body)) + body


def set_of(members: list[bytes]) -> bytes:
    """DER SET OF: members in ascending order of their encodings."""
    return tlv(0x31, b"".join(sorted(members)))


def integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


@lru_cache(maxsize=256)  # kept: pure (a dotted OID → its DER), bounded
def oid(dotted: str) -> bytes:
    der: bytes = algos.ObjectIdentifier(dotted).dump()
    return der


def attribute(type_oid: str, *values_der: bytes) -> bytes:
    """A CMS Attribute: SEQUENCE { type, SET OF values }."""
    return tlv(0x30, oid(type_oid) + set_of(list(values_der)))


def generalized_time(moment: dt.datetime) -> bytes:
    return tlv(0x18, moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode())


def utc_time(moment: dt.datetime) -> bytes:
    return tlv(0x17, moment.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ").encode())


def elements(body: bytes) -> list[bytes]:
    """The encoded TLVs that make up a constructed value's contents, as they are (no re-encoding)."""
    out, i = [], 0
    while i < len(body):
        start = i
        i += 1  # tag (kyso reads only low-tag-number forms here)
        first = body[i]
        i += 1
        if first & 0x80:
            count = first & 0x7F
            size = int.from_bytes(body[i:i + count], "big")
            i += count
        else:
            size = first
        i += size
        if i > len(body):
            raise ValueError("truncated DER")
        out.append(body[start:i])
    return out


CONTENT_TYPE = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
SIGNING_TIME = "1.2.840.113549.1.9.5"
SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
SIGNATURE_TIME_STAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"
DATA = "1.2.840.113549.1.7.1"
SIGNED_DATA = "1.2.840.113549.1.7.2"
TST_INFO = "1.2.840.113549.1.9.16.1.4"
