"""Hostile PDFs built in memory: decompression bombs and deeply nested objects, all small on the wire."""
from __future__ import annotations

import zlib
from functools import lru_cache

GB = 1 << 30


@lru_cache(maxsize=4)
def deflated_zeros(size: int) -> bytes:
    """``size`` zero bytes, deflated in chunks (never the whole expansion in memory): ~1 kB per MB."""
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [packer.compress(chunk) for _ in range(size >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


def build_pdf(objects: dict[int, bytes], root: int = 1, trailer_extra: bytes = b"") -> bytes:
    """A classic-xref PDF from ``{number: body}`` (bodies without ``obj``/``endobj``), with correct offsets."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (b"%010d 00000 n \n" % offsets[number]) if number in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (size, root, trailer_extra, xref)
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _page_pdf(contents: bytes, extra_objects: dict[int, bytes] | None = None, catalog_extra: bytes = b"") -> bytes:
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
               2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
               4: contents}
    objects.update(extra_objects or {})
    return build_pdf(objects)


def flate_bomb_page(size: int = GB) -> bytes:
    """A one-page PDF whose page content stream inflates to ``size`` bytes of zeros (~1 MB on the wire)."""
    return _page_pdf(_stream(deflated_zeros(size), b"/Filter /FlateDecode "))


def double_flate_bomb(size: int = GB) -> bytes:
    """Two layers of Deflate (``/Filter [/FlateDecode /FlateDecode]``): ``size`` bytes from a few kB."""
    twice = zlib.compress(deflated_zeros(size), 9)
    return _page_pdf(_stream(twice, b"/Filter [/FlateDecode /FlateDecode] "))


@lru_cache(maxsize=1)
def object_stream_bomb(size: int = GB) -> bytes:
    """The catalogue lives in an object stream padded with ``size`` spaces (cross-reference stream, PDF 1.5):
    every reader must inflate it to find the page tree."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    header = b"1 0".ljust(16)
    packer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    data = packer.compress(header + catalog) + b"".join(packer.compress(chunk) for _ in range(size >> 20))
    data += packer.flush()
    objects = {2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
               4: _stream(b"BT ET"),
               5: _stream(data, b"/Type /ObjStm /N 1 /First 16 /Filter /FlateDecode ")}
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    rows = [b"\x00" + (0).to_bytes(4, "big") + b"\xff\xff",  # 0: free
            b"\x02" + (5).to_bytes(4, "big") + b"\x00\x00"]  # 1: in object stream 5, index 0
    rows += [b"\x01" + offsets[n].to_bytes(4, "big") + b"\x00\x00" for n in (2, 3, 4, 5)]
    rows.append(b"\x01" + xref_at.to_bytes(4, "big") + b"\x00\x00")  # 6: the xref stream itself
    table = b"".join(rows)
    out += b"6 0 obj\n" + _stream(table, b"/Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R ") + b"\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def nested_arrays(depth: int, where: bytes = b"catalog") -> bytes:
    """A PDF whose catalogue holds ``depth`` nested arrays ``[[[...]]]`` (or dictionaries, ``where=b"dict"``)."""
    if where == b"dict":
        deep = b"<< /A " * depth + b"1" + b" >>" * depth
    else:
        deep = b"[" * depth + b"1" + b"]" * depth
    return _page_pdf(_stream(b"BT ET"), catalog_extra=b"/Deep " + deep + b" ")


def nested_references(depth: int) -> bytes:
    """A chain of ``depth`` indirect objects, each an array holding a reference to the next."""
    objects = {5 + i: b"[%d 0 R]" % (6 + i) for i in range(depth)}
    objects[5 + depth] = b"1"
    return _page_pdf(_stream(b"BT ET"), objects, catalog_extra=b"/Deep 5 0 R ")
