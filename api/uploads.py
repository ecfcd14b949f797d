"""Reading an uploaded PDF: bounded in memory, and refused early when it is not a PDF at all, or when it is
built to exhaust whoever reads it.

Two shapes of hostile PDF are refused here, before pyHanko or pypdf open the file:

- **Decompression bombs**: a ``/FlateDecode`` stream of a few kilobytes that inflates to gigabytes (or two
  Deflate layers stacked). Every Flate stream is inflated once, in 1 MiB pieces that are counted and thrown
  away, so the check itself never holds more than a few MiB; the file is refused as soon as one stream
  inflates beyond ``MAX_STREAM_BYTES`` or at a ratio only stacked Deflate layers reach, or all of them
  together beyond ``MAX_DOCUMENT_BYTES``. pyHanko (0.38+) and pypdf have their own caps (256 MiB and 75 MB per stream):
  this check refuses far earlier, with a message, and also for the pages only pypdf's text scan reads.
- **Deep nesting**: ``[[[[...`` or ``<< /A << /A ...`` thousands deep, which recursive parsers answer with
  ``RecursionError``. Outside stream data, a run of more than ``MAX_NESTING`` opening brackets with no
  closing one between them (separated by at most a few bytes of keys or numbers) is refused. Nesting spread
  out more than that still ends as a 4xx ``unreadable_pdf`` from the readers; this check gives the clear
  message cheaply (one C-speed regular expression per stretch between streams, no Python loop per byte).

Both checks are CPU work proportional to the file: callers on the event loop run them in a thread.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from signing.errors import PdfTooLarge, UnreadablePdf

MiB = 1 << 20
MAX_NESTING = 100  # pyHanko's recursive reader fails from about 500 (RecursionError); real documents stay under 20
# One stream inflates to at most MAX_STREAM_BYTES (pyHanko's own default cap: a 9000 x 9000 RGB image, 243 MB,
# is real); beyond RATIO_FLOOR, never at more than MAX_STREAM_RATIO times its encoded size (one Deflate layer
# tops out near 1032:1, so only stacked layers exceed it: the same rule as pyHanko's). All streams of one
# file together: MAX_DOCUMENT_BYTES, or DOCUMENT_RATIO times the file's size if that is more.
MAX_STREAM_BYTES = 256 * MiB
RATIO_FLOOR = MiB
MAX_STREAM_RATIO = 1100
MAX_DOCUMENT_BYTES = 512 * MiB
DOCUMENT_RATIO = 100
MAX_FLATE_LAYERS = 4
PIECE = MiB

_STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]{0,400}\]|/[^\s/\[\]<>()]+)")
_FLATE = {b"/FlateDecode", b"/Fl"}
# MAX_NESTING + 1 openers, each followed by at most 40 bytes that close nothing and open no string:
# possessive, so a near miss costs one pass over the run, never backtracking
_DEEP = re.compile(rb"(?:(?:\[|<<)[^\[\]<>()]{0,40}+){%d,}+" % (MAX_NESTING + 1))


class HostilePdf(UnreadablePdf):
    """A PDF built to exhaust a reader (decompression bomb, absurd nesting): refused before it is opened."""

    code = "hostile_pdf"


async def read_pdf(upload: UploadFile, limit: int) -> bytes:
    """At most ``limit`` bytes; a file without a ``%PDF-`` header in its first kilobyte is not read further."""
    data = await upload.read(limit + 1)
    return await run_in_threadpool(checked_pdf, data, limit, upload.filename or "the file")


def checked_pdf(data: bytes, limit: int, name: str) -> bytes:
    """The same checks for a PDF sent as the request body itself (``Content-Type: application/pdf``)."""
    if len(data) > limit:
        raise PdfTooLarge(f"{name} is larger than the {limit:,}-byte limit")
    if b"%PDF-" not in data[:1024]:
        raise UnreadablePdf(f"{name} is not a PDF (no %PDF- header)" if data else f"{name} is empty")
    check_structure(data, name)
    return data


def check_structure(data: bytes, name: str = "the PDF") -> None:
    """Refuse decompression bombs and absurdly deep nesting (``HostilePdf``, a 4xx), in bounded memory."""
    budget = max(MAX_DOCUMENT_BYTES, DOCUMENT_RATIO * len(data))
    previous_end = 0
    for match in _STREAM.finditer(data):
        start = match.end()
        if start < previous_end:  # the word inside a stream we already skipped
            continue
        _check_nesting(data, previous_end, match.start(), name)
        end = data.find(b"endstream", start)
        end = len(data) if end < 0 else end
        layers = _flate_layers(data[max(previous_end, match.start() - 2048):match.start()])
        if layers:
            budget -= _inflated_size(data, start, end, layers, budget, name)
        previous_end = end
    _check_nesting(data, previous_end, len(data), name)


def _check_nesting(data: bytes, start: int, end: int, name: str) -> None:
    if start < end and _DEEP.search(data, start, end):
        raise HostilePdf(f"{name} nests arrays or dictionaries more than {MAX_NESTING} deep, which no real "
                         "document does; re-export it from the producing software")


def _flate_layers(head: bytes) -> int:
    """How many ``/FlateDecode`` filters the stream dictionary just before ``stream`` applies first."""
    matches = list(_FILTER.finditer(head))
    found = matches[-1] if matches else None
    if found is None:
        return 0
    names = re.findall(rb"/[^\s/\[\]<>()]+", found.group(1))
    layers = 0
    for filter_name in names:
        if filter_name not in _FLATE:
            break
        layers += 1
    return min(layers, MAX_FLATE_LAYERS)


def _pieces(data: bytes, start: int, end: int) -> Iterator[memoryview]:
    view = memoryview(data)
    for at in range(start, end, PIECE):
        yield view[at:min(at + PIECE, end)]


def _inflate(pieces: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """Inflate a stream of pieces, yielding at most ``PIECE`` bytes at a time; broken data just ends it
    (the reader will say the stream is damaged; that is not this check's business)."""
    decoder = zlib.decompressobj()
    try:
        for piece in pieces:
            pending: bytes | memoryview = piece
            while pending and not decoder.eof:
                out = decoder.decompress(pending, PIECE)
                pending = decoder.unconsumed_tail
                if out:
                    yield out
            if decoder.eof:
                return
    except zlib.error:
        return


def _inflated_size(data: bytes, start: int, end: int, layers: int, budget: int, name: str) -> int:
    encoded = max(1, end - start)
    cap = min(MAX_STREAM_BYTES, max(RATIO_FLOOR, MAX_STREAM_RATIO * encoded))
    pieces: Iterable[bytes | memoryview] = _pieces(data, start, end)
    for _ in range(layers):
        pieces = _inflate(pieces)
    size = 0
    for out in pieces:
        size += len(out)
        if size > cap:
            raise HostilePdf(f"{name} holds a compressed stream (at byte {start:,}) that inflates to more than "
                             f"{cap // MiB:,} MiB from {encoded:,} bytes: a decompression bomb, refused")
        if size > budget:
            raise HostilePdf(f"{name}'s compressed streams inflate to more than "
                             f"{max(MAX_DOCUMENT_BYTES, DOCUMENT_RATIO * len(data)) // MiB:,} MiB in all; refused")
    return size
