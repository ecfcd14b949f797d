"""Hypothesis strategies for hostile input: mutated bytes, DER protocol requests, policy documents."""
from __future__ import annotations

import hashlib
import struct
import zlib

from asn1crypto import algos, tsp
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from hypothesis import strategies as st

HASHES = ["sha1", "sha256", "sha384", "sha512", "md5", "sha3_256", "1.2.3.4.5"]


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_edits: int = 4) -> bytes:
    """``base`` with a few edits: bytes flipped or overwritten, ranges deleted, duplicated or inserted,
    the end cut off. The structures a parser walks stay mostly in place, so it gets deep before failing."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_edits))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=16))
            continue
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "dup", "truncate"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0x30, 0x80, 0x81, 0x84, 0xFF, 0x7F, 0x28, 0x3C, 0x5B]))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 256))]
        else:
            del data[at:]
    return bytes(data)


def hostile_bytes(*bases: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, truncations and mutations of ``bases``, and the bases themselves."""
    options = [st.binary(max_size=4096)]
    for base in bases:
        options += [st.just(base), st.integers(0, len(base)).map(lambda n, b=base: b[:n]), mutated(base)]
    return st.one_of(*options)


@st.composite
def tsa_query(draw: st.DrawFn) -> bytes:
    """A well-formed TimeStampReq with generated choices: hash algorithm, imprint length, nonce (any size,
    negative too), policy, certReq, an extension."""
    algorithm = draw(st.sampled_from(HASHES))
    size = {"sha1": 20, "md5": 16, "sha384": 48, "sha512": 64}.get(algorithm, 32)
    imprint = draw(st.one_of(st.just(hashlib.sha256(b"kyso").digest()[:size].ljust(size, b"\0")),
                             st.binary(max_size=80)))
    req: dict[str, object] = {"version": draw(st.sampled_from(["v1", 2, 0])),
                              "message_imprint": {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": imprint}}
    if draw(st.booleans()):
        req["nonce"] = draw(st.integers(-(2**200), 2**200))
    if draw(st.booleans()):
        req["cert_req"] = draw(st.booleans())
    if draw(st.booleans()):
        req["req_policy"] = draw(st.sampled_from(["1.2.3.4", "2.5.29.32.0", "1.3.6.1.4.1.99999.1"]))
    if draw(st.booleans()):
        req["extensions"] = [{"extn_id": draw(st.sampled_from(["1.2.3", "2.5.29.19"])),
                              "critical": draw(st.booleans()), "extn_value": draw(st.binary(max_size=8))}]
    return tsp.TimeStampReq(req).dump(force=True)


def tsa_queries() -> st.SearchStrategy[bytes]:
    base = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "hashed_message": hashlib.sha256(b"kyso").digest()}, "nonce": 12345, "cert_req": True}).dump()
    return st.one_of(tsa_query(), hostile_bytes(base))


def ocsp_request(issuer_name_hash: bytes, issuer_key_hash: bytes, serial: int, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(issuer_name_hash, issuer_key_hash, serial, hashes.SHA1())
    if nonce is not None:
        from cryptography import x509
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    from cryptography.hazmat.primitives import serialization
    return builder.build().public_bytes(serialization.Encoding.DER)


def ocsp_requests(*bases: bytes) -> st.SearchStrategy[bytes]:
    """Requests for certificates of unknown issuers, and mutations of ``bases`` (real requests)."""
    unknown = st.builds(ocsp_request, st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20),
                        st.integers(1, 2**159), st.one_of(st.none(), st.binary(min_size=1, max_size=128)))
    return st.one_of(unknown, hostile_bytes(ocsp_request(b"\0" * 20, b"\1" * 20, 1), *bases))


def png(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width`` x ``height`` (only a 64 x 64 corner of pixels is present)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    rows = zlib.compress(b"".join(b"\x00" + b"\x00\x00\x00\x00" * min(width, 64) for _ in range(min(height, 64))))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def pngs() -> st.SearchStrategy[bytes]:
    """PNGs of any announced size (the pixels are not all there), and mutations of a small real one."""
    return st.one_of(st.builds(png, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)), hostile_bytes(png(64, 64)))
