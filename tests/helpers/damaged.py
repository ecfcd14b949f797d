"""Damaged copies of a real PDF (one with a classic xref table), each damaged the way producers and careless
tools damage files, every other byte left as it was: what kyso must repair before signing, or refuse."""
from __future__ import annotations

import re


def _same_length(pdf: bytes, pattern: bytes, replacement: bytes) -> bytes:
    """Replace the first match with ``replacement`` (groups expanded) padded to the match's length, so no offset moves."""
    m = re.search(pattern, pdf)
    assert m, f"{pattern!r} not in the PDF"
    new = m.expand(replacement)
    assert len(new) <= len(m[0])
    return pdf[:m.start()] + new.ljust(len(m[0])) + pdf[m.end():]


def null_page_tree(pdf: bytes) -> bytes:
    """The catalogue's /Pages is null: a file with no page tree at all."""
    return _same_length(pdf, rb"/Pages\s+\d+\s+\d+\s+R", b"/Pages null")


def empty_page_tree(pdf: bytes) -> bytes:
    """The page tree's root has /Count 0 and no kids."""
    return _same_length(pdf, rb"/Count\s+\d+\s*/Kids\s*\[[^\]]*\]", b"/Count 0 /Kids []")


def font_as_page(pdf: bytes) -> bytes:
    """The page tree's second kid is the font dictionary (object 2 of fourpages.pdf), not a page."""
    return _same_length(pdf, rb"/Kids\s*\[\s*(\d+ 0 R)\s+\d+ 0 R", rb"/Kids [ \1 2 0 R")


def _startxref(pdf: bytes) -> re.Match[bytes]:
    m = list(re.finditer(rb"startxref\s+(\d+)", pdf))[-1]
    return m


def shifted_offsets(pdf: bytes) -> bytes:
    """A comment inserted before the first object, ``startxref`` corrected: every object offset is wrong
    (what a tool that edits the text of a PDF without rewriting its xref produces)."""
    first = re.search(rb"\n1 0 obj", pdf)
    assert first
    inserted = b"\n% a line added by a careless editor"
    shifted = pdf[:first.start()] + inserted + pdf[first.start():]
    m = _startxref(shifted)
    return shifted[:m.start(1)] + str(int(m[1]) + len(inserted)).encode() + shifted[m.end(1):]


def stale_startxref(pdf: bytes) -> bytes:
    """``startxref`` points seven bytes before the xref table."""
    m = _startxref(pdf)
    return pdf[:m.start(1)] + str(int(m[1]) - 7).encode() + pdf[m.end(1):]
