"""qpdf over bytes in memory (signing/qpdf.py): the same reading as from a BytesIO — pages, objects and
warnings alike — read by qpdf itself from an anonymous in-memory file that leaves no descriptor open."""
from __future__ import annotations

import io
import os

import pikepdf
import pytest

from signing import qpdf
from tests.helpers import damaged
from tests.helpers.pdfs import many_pages
from tests.helpers.signing import CORPUS


def _reading(document: pikepdf.Pdf) -> tuple[int, int, list[str]]:
    return len(document.pages), len(document.objects), [qpdf.plain(w) for w in document.get_warnings()]


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("name", ["sound", "shifted offsets", "stale startxref", "null page tree", "font as page"])
def test_the_same_reading_as_from_a_bytesio(name: str) -> None:
    sound = (CORPUS / "fourpages.pdf").read_bytes()
    pdf = {"sound": sound, "shifted offsets": damaged.shifted_offsets(sound),
           "stale startxref": damaged.stale_startxref(sound), "null page tree": damaged.null_page_tree(sound),
           "font as page": damaged.font_as_page(sound)}[name]
    try:
        with pikepdf.open(io.BytesIO(pdf)) as expected_doc:
            expected: object = _reading(expected_doc)
    except pikepdf.PdfError as error:
        expected = qpdf.plain(str(error))
    before = _open_descriptors()
    try:
        with qpdf.opened(pdf) as document:
            assert document.filename.startswith("/proc/self/fd/")
            found: object = _reading(document)
    except pikepdf.PdfError as error:
        found = qpdf.plain(str(error))
    assert found == expected
    assert _open_descriptors() == before, "no descriptor is left open"
    if name != "sound":
        assert isinstance(expected, str) or expected[2], "a damaged file is one qpdf warns about or refuses"


def test_a_file_qpdf_cannot_open_closes_its_descriptor() -> None:
    before = _open_descriptors()
    with pytest.raises(pikepdf.PdfError), qpdf.opened(b"%PDF-1.7\nthis is not a PDF at all\n"):
        pass
    assert _open_descriptors() == before


def test_without_memory_files_bytesio_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = many_pages(20, 500)
    monkeypatch.delattr(os, "memfd_create")
    with qpdf.opened(pdf) as document:
        assert document.filename.startswith("stream") or "BytesIO" in document.filename
        assert len(document.pages) == 20


@pytest.mark.parametrize("message,plain", [
    ("/proc/self/fd/12 (offset 737): xref not found", "(offset 737): xref not found"),
    ("/proc/self/fd/7, object 4 0 at offset 224: kid 0 (from 0) Resources is missing",
     ", object 4 0 at offset 224: kid 0 (from 0) Resources is missing"),
    ("stream <_io.BytesIO object at 0x7f>: file is damaged", "file is damaged"),
    ("/proc/self/fd/123: file is damaged", "file is damaged"),
    ("/tmp/x.pdf: not ours", "/tmp/x.pdf: not ours"),
])
def test_messages_name_no_file(message: str, plain: str) -> None:
    assert qpdf.plain(message) == plain


def test_the_memory_file_is_not_on_disk() -> None:
    with qpdf.opened(many_pages(2, 200)) as document:
        target = os.readlink(document.filename) if document.filename.startswith("/proc/") else document.filename
    assert target.startswith("/memfd:kyso-pdf")
