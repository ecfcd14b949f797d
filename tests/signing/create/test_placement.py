"""Automatic placement looks at one page, once (signing/create/placement.py), and a hostile page cannot make
it look for long: counted, not timed. What the rendering shows decides, nothing else: content a viewer does
not show (under a white box, fully transparent) is free paper; content it shows, however pale, is not."""
from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import Any

import pikepdf
import pypdfium2 as pdfium
import pytest

from api.container import Container
from signing.create import placement
from signing.create.service import AppearanceOptions, SignRequest
from signing.verify import visual_diff
from tests.helpers.pdfs import assemble
from tests.helpers.signing import COMMUNE
from tests.signing.create import test_stamp_on_paper as paper
from tests.signing.create.test_stamp_on_paper import (
    _joined,
    _page_count,
    _page_pdf,
    _text_lines,
    _widget,
    generated,
    sign,
)

person, agency_seal = paper.person, paper.agency_seal  # the same fixtures


class Counted:
    """Pages PDFium loads and pages rendered, in order, for every document opened while it is active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loaded: list[int] = []
        self.rendered = 0
        self.renderings: list[visual_diff.Rendering] = []
        get_page, render = pdfium.PdfDocument.get_page, visual_diff._render_page

        def counted_get_page(doc: pdfium.PdfDocument, index: int) -> Any:
            self.loaded.append(index)
            return get_page(doc, index)

        def counted_render(*args: Any, **kwargs: Any) -> visual_diff.Rendering:
            self.rendered += 1
            rendering = render(*args, **kwargs)
            self.renderings.append(rendering)
            return rendering

        monkeypatch.setattr(pdfium.PdfDocument, "get_page", counted_get_page)
        monkeypatch.setattr(visual_diff, "_render_page", counted_render)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counted]:
    yield Counted(monkeypatch)


def _many_pages(count: int, last: bytes) -> bytes:
    """``count`` A4 pages in one flat page tree (the shape naive generators write): every page but the last
    full of black, the last one drawing ``last``."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Count %d /Kids [%s] >>" % (count, b" ".join(b"%d 0 R" % (5 + i) for i in range(count))),
               b"<< /Length 23 >>\nstream\n0 g 0 0 595 842 re f\nendstream",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(last), last)]
    for i in range(count):
        content = 4 if i == count - 1 else 3
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>" % content)
    return assemble(objects)


def test_only_the_last_page_of_ten_thousand_is_loaded_and_rendered(pki: Container, person: str,
                                                                   counted: Counted) -> None:
    pdf = _many_pages(10_000, b"BT /F1 11 Tf 60 780 Td (Last page) Tj ET")
    result = sign(pki, pdf, person)
    assert counted.loaded == [9999] and counted.rendered == 1
    page, _ = _widget(result.pdf, "Signature1")
    assert page == 9999 and not result.stamp_on_new_page


def test_the_preview_renders_the_one_page_signing_would(pki: Container, person: str, counted: Counted) -> None:
    pdf = _many_pages(300, b"")
    preview = pki.signing.stamp_preview(SignRequest(pdf=pdf, document_type="dossier-result", commune_code=COMMUNE,
                                                    credential_id=person, level="B-B",
                                                    appearance=AppearanceOptions()))
    assert counted.loaded == [299] and counted.rendered == 1
    assert preview.page == 299 and not preview.new_page


def test_a_full_last_page_is_rendered_once_then_a_page_is_added(pki: Container, person: str,
                                                               counted: Counted) -> None:
    pdf = _many_pages(40, b"0 g 0 0 595 842 re f")
    result = sign(pki, pdf, person)
    assert counted.loaded == [39] and counted.rendered == 1, "no earlier page is looked at"
    assert result.stamp_on_new_page and _page_count(result.pdf) == 41
    assert _widget(result.pdf, "Signature1")[0] == 40


def test_a_huge_page_is_rendered_within_the_pixel_bound(pki: Container, person: str, counted: Counted) -> None:
    pdf = _page_pdf(14400, 14400, b"0 g 0 7000 14400 7400 re f " + _text_lines(100, 6900, 5000))
    result = sign(pki, pdf, person)
    [rendering] = counted.renderings
    assert rendering.image.width * rendering.image.height <= visual_diff.MAX_PIXELS
    page, box = _widget(result.pdf, "Signature1")
    assert page == 0 and not result.stamp_on_new_page
    assert box[3] < 5000 - 14 and box[2] <= 14400 - placement.MARGIN, "on the blank lower part, inside the page"


def _absurd_page(ops: int) -> bytes:
    """A page of ``ops`` tiny filled squares, each its own path object, over its upper half: the lower half
    stays blank."""
    squares = b"\n".join(b"%d %d 0.5 0.5 re f" % (40 + (i * 7) % 500, 440 + (i // 71) % 380) for i in range(ops))
    return _page_pdf(595, 842, b"0 g " + squares)


def test_a_page_of_a_hundred_thousand_operators_still_gets_its_stamp(pki: Container, person: str,
                                                                     counted: Counted) -> None:
    result = sign(pki, _absurd_page(100_000), person)
    assert counted.rendered == 1
    page, box = _widget(result.pdf, "Signature1")
    assert page == 0 and not result.stamp_on_new_page and box[3] < 440


def test_a_page_that_outlasts_the_budget_gets_a_new_page(pki: Container, person: str, counted: Counted,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """PDFium's progressive rendering asks the pause callback as it goes; a clock that moves 0.05 s per
    question runs out of the 3 s budget on a page of 100,000 operators, and the stamp goes on a new page."""
    now = [1000.0]

    def clock() -> float:
        now[0] += 0.05
        return now[0]

    monkeypatch.setattr(visual_diff.time, "monotonic", clock)
    result = sign(pki, _absurd_page(100_000), person)
    assert counted.rendered == 1 and counted.renderings == [], "the rendering was abandoned, not finished"
    assert result.stamp_on_new_page and _page_count(result.pdf) == 2


# what a viewer shows decides: (content stream, whether the bottom-right corner is free paper)
SHOWN = {
    # black text under an opaque white box: the box is what is seen
    "text-under-white-box": (b"BT /F1 11 Tf 300 100 Td (Hidden under white) Tj ET 1 g 250 40 345 260 re f", True),
    # white text on the white page
    "white-text": (b"1 g BT /F1 30 Tf 300 100 Td (White on white) Tj ET", True),
    # invisible text (render mode 3, as an OCR layer draws it)
    "invisible-text": (b"BT 3 Tr /F1 30 Tf 300 100 Td (OCR layer) Tj ET", True),
    # a pale but opaque grey fill (242 of 255) over the lower part: seen, so not free
    "pale-fill": (b"0.95 g 0 0 595 420 re f", False),
}


@pytest.mark.parametrize("case", list(SHOWN))
def test_placement_follows_what_the_page_shows(pki: Container, person: str, counted: Counted, case: str) -> None:
    stream, free = SHOWN[case]
    result = sign(pki, _page_pdf(595, 842, stream), person)
    [rendering] = counted.renderings
    _, box = _widget(result.pdf, "Signature1")
    assert not result.stamp_on_new_page
    covered = rendering.pixel_box(box)
    assert covered is not None and rendering.image.crop(covered).getextrema()[0] >= placement.WHITE
    assert (box[1] < 420) is free, ("bottom right" if free else "above the pale fill", box)


def test_a_transparent_box_is_free_paper(pki: Container, person: str, counted: Counted) -> None:
    """A black box painted with constant alpha 0 (an ExtGState /ca 0) shows nothing."""
    pdf = pikepdf.open(io.BytesIO(_page_pdf(595, 842, b"/GS0 gs 0 g 0 0 595 842 re f")))
    pdf.pages[0].Resources.ExtGState = pikepdf.Dictionary(GS0=pikepdf.Dictionary(Type=pikepdf.Name.ExtGState, ca=0))
    out = io.BytesIO()
    pdf.save(out)
    result = sign(pki, out.getvalue(), person)
    _, box = _widget(result.pdf, "Signature1")
    assert not result.stamp_on_new_page and box[1] < 200, box


def test_the_seal_goes_on_the_page_of_the_person_stamp(pki: Container, person: str, agency_seal: str) -> None:
    """A person stamp placed on page 1 of 2 (``appearance.page``): the seal follows it there, found by the
    widget's /P in one walk of the page tree (it used to fall back to the last page)."""
    pages = generated()
    first = sign(pki, _joined(pages["top-half-text"], pages["top-half-text"]), person, page=1)
    assert _widget(first.pdf, "Signature1")[0] == 0
    second = sign(pki, first.pdf, agency_seal)
    assert _widget(second.pdf, "Signature2")[0] == 0


def _deflated_page(ops: int, *, where: str) -> bytes:
    """``ops`` tiny filled squares (13 bytes each), Flate-compressed to a few kB: in the page's own content, in
    a form XObject the page draws with one operator, or in an annotation's appearance."""
    body = b"0 0 1 1 re f\n" * ops
    pdf = pikepdf.open(io.BytesIO(_page_pdf(595, 842, b"/Fm0 Do" if where == "form" else b"")))
    stream = pikepdf.Stream(pdf, b"")
    stream.write(zlib.compress(body, 9), filter=pikepdf.Name.FlateDecode)
    page = pdf.pages[0]
    if where == "content":
        page.Contents = stream
    else:
        stream.Type, stream.Subtype, stream.BBox = pikepdf.Name.XObject, pikepdf.Name.Form, [0, 0, 595, 842]
    if where == "form":
        page.Resources.XObject = pikepdf.Dictionary(Fm0=stream)
    if where == "annotation":
        page.Annots = pdf.make_indirect([pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Square, Rect=[0, 0, 595, 842],
            AP=pikepdf.Dictionary(N=stream)))])
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


@pytest.mark.parametrize("where", ["content", "form", "annotation"])
def test_content_beyond_the_allowance_is_not_handed_to_pdfium(pki: Container, person: str, counted: Counted,
                                                              where: str) -> None:
    """PDFium parses a page's content when it loads the page, before any budget applies: a page whose content
    inflates past MAX_CONTENT_BYTES (a 7 MB bomb in a few kB) is never loaded, and gets a new page."""
    ops = placement.MAX_CONTENT_BYTES // 13 + 1000
    pdf = _deflated_page(ops, where=where)
    assert len(pdf) < placement.MAX_CONTENT_BYTES // 100
    result = sign(pki, pdf, person)
    assert counted.loaded == [] and counted.rendered == 0
    assert result.stamp_on_new_page and _page_count(result.pdf) == 2


def test_content_within_the_allowance_is_rendered(pki: Container, person: str, counted: Counted) -> None:
    result = sign(pki, _deflated_page(placement.MAX_CONTENT_BYTES // 13 - 1000, where="form"), person)
    assert counted.rendered == 1 and len(counted.renderings) == 1
    assert not result.stamp_on_new_page, "the squares all cover one point: the page has room"


HIDDEN_BOX = (300.0, 40.0, 595.0, 400.0)  # the bottom right, where the stamp would otherwise go


def _hidden_on_screen(how: str) -> bytes:
    """A page whose bottom right PDFium leaves white, though another viewer shows or prints what is there:
    a layer off by default (a viewer's layer panel turns it on) or an annotation flagged NoView + Print."""
    x0, y0, x1, y1 = HIDDEN_BOX
    pdf = pikepdf.open(io.BytesIO(_page_pdf(595, 842, b"BT /F1 11 Tf 40 800 Td (Upper text) Tj ET")))
    page = pdf.pages[0]
    black = b"0 g %g %g %g %g re f" % (x0, y0, x1 - x0, y1 - y0)
    if how == "layer":
        layer = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.OCG, Name="Lớp ẩn"))
        pdf.Root.OCProperties = pikepdf.Dictionary(OCGs=[layer], D=pikepdf.Dictionary(OFF=[layer], ON=[]))
        page.Resources.Properties = pikepdf.Dictionary(L1=layer)
        page.contents_add(pdf.make_stream(b"/OC /L1 BDC " + black + b" EMC"))
    else:
        appearance = pdf.make_stream(black, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form,
                                     BBox=[0, 0, 595, 842])
        page.Annots = pdf.make_indirect([pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Square, Rect=[0, 0, 595, 842], F=4 | 32,
            AP=pikepdf.Dictionary(N=appearance)))])
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@pytest.mark.parametrize("how", ["layer", "noview-annotation"])
def test_the_stamp_never_covers_what_another_viewer_shows(pki: Container, person: str, how: str) -> None:
    """Attacker's view: PDFium draws neither a layer that is off by default nor a NoView annotation, so its
    rendering shows white paper where Acrobat's layer panel, or the printout, shows content. The stamp must
    not be put there."""
    result = sign(pki, _hidden_on_screen(how), person)
    page, box = _widget(result.pdf, "Signature1")
    x0, y0, x1, y1 = HIDDEN_BOX
    overlaps = page == 0 and box[0] < x1 and box[2] > x0 and box[1] < y1 and box[3] > y0
    assert not overlaps, (how, page, box)
