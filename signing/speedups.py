"""Hot spots of signature validation and creation in the libraries, made fast without changing results.

1. PDF hex strings, installed into pyHanko's parser.

A signature's ``/Contents`` is 10–30 kB of hex, and pyHanko reads hex strings one byte at a time
through a generator (``read_non_whitespace`` per digit): PERFORMANCE.md's profile puts ~38% of a
validation there. This reader scans the same bytes in chunks and decodes them with ``binascii``.
It returns exactly what pyHanko's reader returns: anything unusual (a comment inside the string,
a character that is not a hex digit or PDF whitespace, a string that never ends) is handed back to
pyHanko's own reader from the same position, so its behaviour and its error messages are kept.

2. X.509 name comparison (asn1crypto ``Name.__eq__``), which applies RFC 4518 string preparation to
every attribute on every comparison; finding the signer's certificate and checking the ESS
certificate id compare names dozens of times per signature (~26% of validation, PERFORMANCE.md).
Names whose DER encodings are identical are equal without preparation; other pairs are compared
by asn1crypto itself once and the answer is remembered by their DER encodings.

3. PDF name output, installed into pyHanko's writer. pyHanko writes a name one byte at a time, testing
each against the delimiters; a visible stamp writes ~220 names (fonts, resources, the appearance), ~1 ms
of a signature. A name made only of regular printable characters (nearly all of them) is written in one
call; any other name goes to pyHanko's own method, so the bytes are the same either way.
"""
from __future__ import annotations

import binascii
import contextlib
import re
from collections.abc import Iterator
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic

from core.cache import Cache

_original = generic.read_hex_string_from_stream
_WHITESPACE = b" \n\r\t\f\x00"
_NOT_HEX = re.compile(rb"[^0-9A-Fa-f]")
CHUNK = 1 << 16


def read_hex_string(stream: Any) -> Any:
    start = stream.tell()
    stream.read(1)  # '<'
    parts: list[bytes] = []
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            stream.seek(start)
            return _original(stream)  # unterminated: pyHanko's error
        end = chunk.find(b">")
        if end >= 0:
            parts.append(chunk[:end])
            stream.seek(end + 1 - len(chunk), 1)
            break
        parts.append(chunk)
    digits = b"".join(parts).translate(None, _WHITESPACE)
    if _NOT_HEX.search(digits):
        stream.seek(start)
        return _original(stream)  # comment or stray character: pyHanko decides
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


_write_name = generic.NameObject.write_to_stream
_REGULAR = bytes(b for b in range(0x21, 0x7F) if b not in b"()<>[]{}/%#")  # written as they are by pyHanko
_PLAIN_NAME = re.compile(b"/[" + re.escape(_REGULAR) + b"]*")


def write_name(self: generic.NameObject, stream: Any, handler: Any = None, container_ref: Any = None) -> None:
    encoded = self.encode("utf8")
    if _PLAIN_NAME.fullmatch(encoded):
        stream.write(encoded)
    else:
        _write_name(self, stream, handler, container_ref)


_name_eq = asn1_x509.Name.__eq__
_name_ne = asn1_x509.Name.__ne__


# Module-level on purpose: the patched ``Name.__eq__`` is process-wide by nature (asn1crypto's class) and
# the answer is a pure function of two DER encodings, so there is nothing per container to separate.
_equal: Cache[tuple[bytes, bytes], bool] = Cache("name_equality", max_entries=8192)


def name_eq(self: asn1_x509.Name, other: object) -> bool:
    if not isinstance(other, asn1_x509.Name):
        return False
    a, b = self.chosen.dump(), other.chosen.dump()  # the RDN sequences, whatever tag wraps the names
    if a == b:
        return True
    key = (a, b) if a < b else (b, a)
    known = _equal.get(key)
    if known is None:
        known = bool(_name_eq(self, other))
        _equal.put(key, known)
    return known


def installed() -> bool:
    return (generic.read_hex_string_from_stream is read_hex_string and asn1_x509.Name.__eq__ is name_eq
            and generic.NameObject.write_to_stream is write_name)


def install() -> None:
    """Patch pyHanko and asn1crypto for this process. Called once at start-up by the container
    (``api.container.build``) and by ``Verifier()`` for a verifier built by hand; never on import.
    Idempotent; pyHanko's ``read_object`` looks the function up at call time. The patches are meant
    to go upstream (``docs/upstream/``)."""
    generic.read_hex_string_from_stream = read_hex_string
    generic.NameObject.write_to_stream = write_name  # type: ignore[method-assign]
    if asn1_x509.Name.__eq__ is not name_eq:
        asn1_x509.Name.__eq__ = name_eq
        asn1_x509.Name.__ne__ = lambda self, other: not name_eq(self, other)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """pyHanko and asn1crypto as shipped, e.g. to measure the raw libraries in the same process."""
    hex_reader, eq, ne = generic.read_hex_string_from_stream, asn1_x509.Name.__eq__, asn1_x509.Name.__ne__
    name_writer = generic.NameObject.write_to_stream
    generic.read_hex_string_from_stream = _original
    generic.NameObject.write_to_stream = _write_name  # type: ignore[method-assign]
    asn1_x509.Name.__eq__, asn1_x509.Name.__ne__ = _name_eq, _name_ne
    try:
        yield
    finally:
        generic.read_hex_string_from_stream = hex_reader
        generic.NameObject.write_to_stream = name_writer  # type: ignore[method-assign]
        asn1_x509.Name.__eq__, asn1_x509.Name.__ne__ = eq, ne
