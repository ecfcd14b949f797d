"""Visual comparison of a signed revision with the final file (signing/visual_diff.py).

Every altered file is built the way an attacker or an ordinary editor would: an incremental update
appended with pyHanko's writer to real PDFs (the corpus's four-page document, kyso's sample). The
renderer is real PDFium; boxes are checked against where the test drew, in PDF points."""
from __future__ import annotations

import subprocess
import threading
import time
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PdfFileWriter

from core.settings import Settings
from signing.create.sample import LINES, sample_document
from signing.verify import visual_diff
from signing.verify.visual_diff import RenderCache, annotation_overlaps, compare
from tests.helpers.pdfs import append_page
from tests.helpers.signing import CORPUS
from tests.interop.pdf_tools import tool

TEXT_LINE = (73.0, 716.0, 134.0, 731.0)  # the ink of "Page 1"-like text on fourpages.pdf's first page
NEAR = 1.5  # points: a pixel at 100 dpi is 0.72 pt, anti-aliasing adds one


# -- building altered files ------------------------------------------------------------------------
def _update(pdf: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    change(writer)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _appearance(writer: IncrementalPdfFileWriter, width: float, height: float, ops: bytes) -> generic.IndirectObject:
    return writer.add_object(generic.StreamObject({
        pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Form"),
        pdf_name("/BBox"): generic.ArrayObject(map(generic.FloatObject, (0, 0, width, height))),
    }, stream_data=ops))


def _rect(box: tuple[float, ...]) -> generic.ArrayObject:
    return generic.ArrayObject(map(generic.FloatObject, box))


def add_annotation(pdf: bytes, box: tuple[float, float, float, float], subtype: str = "/FreeText",
                   page: int = 0) -> bytes:
    """An annotation whose appearance fills its rectangle grey with a black frame."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        width, height = box[2] - box[0], box[3] - box[1]
        ops = b"0.5 g 0 0 %.2f %.2f re f 0 G 1 w 0.5 0.5 %.2f %.2f re S" % (width, height, width - 1, height - 1)
        ap = _appearance(writer, width, height, ops)
        annot = writer.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name(subtype),
            pdf_name("/Rect"): _rect(box), pdf_name("/F"): generic.NumberObject(4),
            pdf_name("/Contents"): generic.TextStringObject("ĐÃ DUYỆT"),
            pdf_name("/DA"): generic.TextStringObject("0 g /Helv 12 Tf"),
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): ap}),
        }))
        page_ref, _ = writer.find_page_for_modification(page)
        writer.register_annotation(page_ref, annot)
    return _update(pdf, change)


def add_widget(pdf: bytes, box: tuple[float, float, float, float], *, flags: int = 4, name: str = "Later",
               in_form: bool = True) -> bytes:
    """A signature field whose widget paints a dark box (what a later visible signature adds);
    ``in_form=False``: the widget only in the page's /Annots, the catalog left without /AcroForm."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        width, height = box[2] - box[0], box[3] - box[1]
        ap = _appearance(writer, width, height, b"0.2 g 0 0 %.2f %.2f re f" % (width, height))
        page_ref, _ = writer.find_page_for_modification(0)
        field = writer.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/Widget"),
            pdf_name("/FT"): pdf_name("/Sig"), pdf_name("/T"): generic.TextStringObject(name),
            pdf_name("/Rect"): _rect(box), pdf_name("/F"): generic.NumberObject(flags), pdf_name("/P"): page_ref,
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): ap}),
        }))
        writer.register_annotation(page_ref, field)
        if not in_form:
            return
        root = writer.root
        if "/AcroForm" not in root:
            root[pdf_name("/AcroForm")] = generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject()})
            writer.update_root()
        form = root["/AcroForm"]
        form["/Fields"].append(field)
        writer.update_container(form)
    return _update(pdf, change)


def set_widget_flags(pdf: bytes, flags: int) -> bytes:
    """The shadow attack's second step: the first widget of page 1 made visible (or hidden)."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        page_ref, _ = writer.find_page_for_modification(0)
        widget_ref = page_ref.get_object()["/Annots"].raw_get(0)
        widget_ref.get_object()[pdf_name("/F")] = generic.NumberObject(flags)
        writer.mark_update(widget_ref)
    return _update(pdf, change)


def append_content(pdf: bytes, ops: bytes, page: int = 0) -> bytes:
    """A content stream appended to the page's /Contents array in an incremental update, the page's
    own streams wrapped in q/Q as editors do (fourpages.pdf leaves its coordinates moved)."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        writer.add_stream_to_page(page, writer.add_object(generic.StreamObject(stream_data=b"q")), prepend=True)
        writer.add_stream_to_page(page, writer.add_object(generic.StreamObject(stream_data=b"Q " + ops)))
    return _update(pdf, change)


def set_page(pdf: bytes, **entries: generic.PdfObject) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        page_ref, _ = writer.find_page_for_modification(0)
        for key, value in entries.items():
            page_ref.get_object()[pdf_name("/" + key)] = value
        writer.mark_update(page_ref)
    return _update(pdf, change)


def touch_info(pdf: bytes) -> bytes:
    """An incremental update that changes nothing anybody sees."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        writer.set_info(generic.DictionaryObject({pdf_name("/Producer"): generic.TextStringObject("an editor")}))
    return _update(pdf, change)


def huge_page(width: float) -> bytes:
    fresh = PdfFileWriter()
    fresh.insert_page(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Page"), pdf_name("/MediaBox"): _rect((0, 0, width, width)),
        pdf_name("/Resources"): generic.DictionaryObject(),
        pdf_name("/Contents"): fresh.add_object(generic.StreamObject(stream_data=b"0 g 1000 1000 2000 2000 re f")),
    }))
    out = BytesIO()
    fresh.write(out)
    return out.getvalue()


def _close(box: tuple[float, ...] | None, expected: tuple[float, ...], within: float = NEAR) -> bool:
    assert box is not None
    return all(abs(a - b) <= within for a, b in zip(box, expected))


def _contains(outer: tuple[float, ...] | None, inner: tuple[float, ...], slack: float = NEAR) -> bool:
    assert outer is not None
    return (outer[0] <= inner[0] + slack and outer[1] <= inner[1] + slack
            and outer[2] >= inner[2] - slack and outer[3] >= inner[3] - slack)


def _pixels(found: tuple) -> list:  # type: ignore[type-arg]
    return [d for d in found if d.kind == "pixels"]


# -- the tests -------------------------------------------------------------------------------------
def test_identical_files_and_invisible_updates_differ_nowhere(sample_pdf: bytes) -> None:
    assert compare(sample_pdf, sample_pdf) == ()
    assert compare(sample_pdf, touch_info(sample_pdf)) == ()
    # a widget added and hidden: present in the file, invisible to a reader
    assert compare(sample_pdf, add_widget(sample_pdf, (300, 300, 500, 380), flags=2)) == ()


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.pdf") if p.name != "pdfa-multipage.pdf"))
def test_pdfs_from_other_producers_look_the_same_after_an_invisible_update(name: str) -> None:
    """Forms, JBIG2 and JPEG 2000 scans, CJK fonts: renderings repeat to the pixel. A file PDFium
    cannot open (encrypted, fuzzed) is named as not compared, never raised."""
    pdf = (CORPUS / name).read_bytes()
    found = compare(pdf, pdf + b"\n")
    assert all(d.kind == "not_compared" for d in found)
    assert bool(found) == (name in ("graph-encrypted.pdf", "fuzz-378014596.pdf"))


def test_a_form_value_changed_after_signing_is_seen() -> None:
    """The shadow attack's replace variant on a real form: a text field given a value later (it has
    no appearance of its own, so viewers draw the value)."""
    form = (CORPUS / "form.pdf").read_bytes()

    def fill(writer: IncrementalPdfFileWriter) -> None:
        page_ref, _ = writer.find_page_for_modification(0)
        field = page_ref.get_object()["/Annots"].raw_get(0)
        field.get_object()[pdf_name("/V")] = generic.TextStringObject("12345")
        writer.mark_update(field)

    found = compare(form, _update(form, fill))
    assert [d.kind for d in found] == ["pixels"]
    assert _contains((5.78, 45.44, 65.78, 67.44), found[0].box, slack=0)  # inside the field's /Rect


def test_annotation_over_the_text_is_a_pixel_difference_and_an_overlap(sample_pdf: bytes) -> None:
    rect = (60.0, 700.0, 200.0, 745.0)
    forged = add_annotation(sample_pdf, rect)
    found = compare(sample_pdf, forged)
    assert [(d.page, d.kind) for d in found] == [(1, "pixels")]
    assert _contains(found[0].box, rect) and _contains(rect, found[0].box)
    assert found[0].text.vi.startswith("Trang 1 khác với bản đã ký ở vùng (60, 700)–(200, 745)")
    assert found[0].text.en.startswith("Page 1 differs from the signed version")

    overlaps = annotation_overlaps(forged, [(0, rect), (0, (300, 200, 400, 260))], against=sample_pdf)
    assert [(d.page, d.kind, d.box) for d in overlaps] == [(1, "annotation_overlap", rect)]


def test_an_annotation_over_a_signed_stamp_covers_signed_content(sample_pdf: bytes) -> None:
    stamp = (300.0, 80.0, 520.0, 160.0)
    signed = add_widget(sample_pdf, stamp, name="Specialist")
    cover = (320.0, 90.0, 500.0, 150.0)
    forged = add_annotation(signed, cover)
    assert [d.box for d in annotation_overlaps(forged, [(0, cover)], against=signed)] == [cover]
    # a rectangle that only touches the stamp's edge covers nothing
    beside = (520.0, 80.0, 580.0, 160.0)
    assert annotation_overlaps(add_annotation(signed, beside), [(0, beside)], against=signed) == ()


def test_stamp_annotation_on_a_kyso_sample_names_page_and_box(sample_pdf: bytes) -> None:
    """A Stamp on the second page of four: only page 2 differs, and there only."""
    rect = (100.0, 400.0, 250.0, 460.0)
    found = compare(sample_pdf, add_annotation(sample_pdf, rect, "/Stamp", page=1))
    assert [(d.page, d.kind) for d in found] == [(2, "pixels")]
    assert _close(found[0].box, rect)


def test_one_character_changed_in_kyso_sample_text_is_found() -> None:
    """The resolution is chosen to catch this: a full stop for a comma, one digit of a file number."""
    font = Settings.model_fields["stamp_font"].default
    signed = sample_document(font)
    for old, new in (("quy định.", "quy định,"), ("HS-2026-000123", "HS-2026-000128")):
        forged = sample_document(font, tuple(line.replace(old, new) for line in LINES))
        found = compare(signed, forged)
        assert [(d.page, d.kind) for d in found] == [(1, "pixels")], old
        line = next(i for i, text in enumerate(LINES) if old in text)
        baseline = 760 - 18 * line  # signing/sample.py sets line i at y = 760 - 18 i, 12 pt
        assert baseline - 5 <= found[0].box[1] and found[0].box[3] <= baseline + 12, found[0].box


def _poppler(pdf: bytes, tmp_path: Path, name: str) -> Image.Image:
    (tmp_path / f"{name}.pdf").write_bytes(pdf)
    subprocess.run([tool("pdftoppm", "poppler-utils"), "-gray", "-r", "72", "-f", "1", "-l", "1", "-singlefile",
                    tmp_path / f"{name}.pdf", tmp_path / name], check=True, capture_output=True)
    return Image.open(tmp_path / f"{name}.pgm")


@pytest.mark.parametrize("change", ["annotation", "content", "widget outside any form"])
def test_poppler_sees_the_difference_where_the_report_names_it(sample_pdf: bytes, tmp_path: Path,
                                                               change: str) -> None:
    """Another renderer, nobody's code here: pdftoppm's pixels differ in the box compare() names
    (72 dpi, so a poppler pixel is a point; y counted from the top of the 792 pt page)."""
    forged = {"annotation": lambda: add_annotation(sample_pdf, (60, 700, 200, 745)),
              "content": lambda: append_content(sample_pdf, b"0 g 100 100 200 50 re f"),
              "widget outside any form": lambda: add_widget(sample_pdf, (300, 80, 520, 160), in_form=False)}[change]()
    [found] = compare(sample_pdf, forged)
    ink = ImageChops.difference(_poppler(sample_pdf, tmp_path, "signed"), _poppler(forged, tmp_path, "final"))
    x0, top, x1, bottom = ink.point(lambda v: 255 if v > 32 else 0).getbbox()
    assert _close(found.box, (x0, 792 - bottom, x1, 792 - top), within=2)


def test_a_page_appended_is_a_page_count_difference(sample_pdf: bytes) -> None:
    found = compare(sample_pdf, append_page(sample_pdf))
    assert [(d.page, d.kind, d.box) for d in found] == [(5, "page_count", None)]
    assert "4" in found[0].text.en and "5" in found[0].text.en


def test_a_later_widget_is_excluded_only_where_ignore_says(sample_pdf: bytes) -> None:
    box = (300.0, 80.0, 520.0, 160.0)
    stamped = add_widget(sample_pdf, box)
    found = compare(sample_pdf, stamped)
    assert [(d.kind, d.page) for d in found] == [("pixels", 1)] and _close(found[0].box, box)
    assert compare(sample_pdf, stamped, ignore={0: [box]}) == ()
    assert compare(sample_pdf, stamped, ignore={1: [box]}) != ()  # on another page it excuses nothing
    # whatever else changed beside the excused stamp is still reported
    both = append_content(stamped, b"0 g 72 300 100 20 re f")
    rest = compare(sample_pdf, both, ignore={0: [box]})
    assert len(rest) == 1 and _close(rest[0].box, (72, 300, 172, 320))


def test_a_widget_outside_any_form_is_seen_as_other_viewers_show_it(sample_pdf: bytes) -> None:
    """PDFium draws widgets only through a form environment; poppler and others draw this one."""
    box = (100.0, 100.0, 300.0, 200.0)
    found = compare(sample_pdf, add_widget(sample_pdf, box, in_form=False))
    assert [d.kind for d in found] == ["pixels"] and _close(found[0].box, box)


def test_shadow_hide_and_reveal_is_seen(sample_pdf: bytes) -> None:
    box = (300.0, 300.0, 500.0, 380.0)
    signed = add_widget(sample_pdf, box, flags=2)  # hidden when signed
    found = compare(signed, set_widget_flags(signed, 4))
    assert [d.kind for d in found] == ["pixels"] and _close(found[0].box, box)


def hidden_layer(pdf: bytes, ops: bytes) -> bytes:
    """``ops`` drawn in an optional content group that the default configuration turns off."""
    def change(writer: IncrementalPdfFileWriter) -> None:
        ocg = writer.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/OCG"), pdf_name("/Name"): generic.TextStringObject("Lớp ẩn")}))
        writer.root[pdf_name("/OCProperties")] = generic.DictionaryObject({
            pdf_name("/OCGs"): generic.ArrayObject([ocg]),
            pdf_name("/D"): generic.DictionaryObject({pdf_name("/OFF"): generic.ArrayObject([ocg])})})
        writer.update_root()
        resources = generic.DictionaryObject({
            pdf_name("/Properties"): generic.DictionaryObject({pdf_name("/L1"): ocg})})
        writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=b"q")), prepend=True)
        writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(
            stream_data=b"Q /OC /L1 BDC " + ops + b" EMC")), resources=resources)
    return _update(pdf, change)


def show_layers(pdf: bytes) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        properties = writer.root["/OCProperties"]
        properties["/D"] = generic.DictionaryObject({pdf_name("/OFF"): generic.ArrayObject()})
        writer.update_container(properties)
        writer.update_root()
    return _update(pdf, change)


def test_a_hidden_layer_switched_on_is_seen(sample_pdf: bytes) -> None:
    signed = hidden_layer(sample_pdf, b"0 g 100 100 200 50 re f")
    assert compare(sample_pdf, signed) == ()  # the layer is off: nothing to see
    found = compare(signed, show_layers(signed))
    assert [d.kind for d in found] == ["pixels"] and _close(found[0].box, (100, 100, 300, 150))


def test_content_appended_is_boxed_where_it_was_drawn(sample_pdf: bytes) -> None:
    drawn = compare(sample_pdf, append_content(sample_pdf, b"0 g 100 100 200 50 re f"))
    assert [d.kind for d in drawn] == ["pixels"] and _close(drawn[0].box, (100, 100, 300, 150))

    # white paint over the text: the box is the text it hid, inside the white rectangle
    hidden = _pixels(compare(sample_pdf, append_content(sample_pdf, b"1 g 60 700 200 50 re f")))
    assert len(hidden) == 1 and _close(hidden[0].box, TEXT_LINE, within=3)
    assert _contains((60, 700, 260, 750), hidden[0].box, slack=0)


def test_new_text_is_boxed(sample_pdf: bytes) -> None:
    text = (b"BT /F9 14 Tf 300 500 Td (Da duyet) Tj ET")
    forged = _update(sample_pdf, lambda w: _add_text(w, text))
    found = compare(sample_pdf, forged)
    assert [d.kind for d in found] == ["pixels"]
    x0, y0, x1, y1 = found[0].box
    assert 299 <= x0 <= 302 and 495 <= y0 <= 501 and 330 < x1 < 370 and 505 < y1 <= 515


def _add_text(writer: IncrementalPdfFileWriter, ops: bytes) -> None:
    font = writer.add_object(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Font"), pdf_name("/Subtype"): pdf_name("/Type1"),
        pdf_name("/BaseFont"): pdf_name("/Helvetica")}))
    resources = generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F9"): font})})
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=b"q")), prepend=True)
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=b"Q " + ops)), resources=resources)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotated_pages_keep_boxes_in_user_space(sample_pdf: bytes, rotate: int) -> None:
    signed = set_page(sample_pdf, Rotate=generic.NumberObject(rotate))
    found = compare(signed, append_content(signed, b"0 g 100 100 200 50 re f"))
    assert [d.kind for d in found] == ["pixels"] and _close(found[0].box, (100, 100, 300, 150))
    rect = (60.0, 700.0, 200.0, 745.0)
    overlay = compare(signed, add_annotation(signed, rect))
    assert _close(overlay[0].box, rect)
    assert [d.box for d in annotation_overlaps(add_annotation(signed, rect), [(0, rect)], against=signed)] == [rect]


def test_an_offset_crop_box_keeps_boxes_in_user_space(sample_pdf: bytes) -> None:
    signed = set_page(sample_pdf, CropBox=_rect((50, 50, 562, 742)))
    found = compare(signed, append_content(signed, b"0 g 100 100 200 50 re f"))
    assert [d.kind for d in found] == ["pixels"] and _close(found[0].box, (100, 100, 300, 150))


def test_size_or_rotation_changed_after_signing(sample_pdf: bytes) -> None:
    rotated = compare(sample_pdf, set_page(sample_pdf, Rotate=generic.NumberObject(90)))
    assert [(d.page, d.kind) for d in rotated] == [(1, "page_size")]
    assert "90°" in rotated[0].text.en
    resized = compare(sample_pdf, set_page(sample_pdf, MediaBox=_rect((0, 0, 612, 1008))))
    assert [(d.page, d.kind) for d in resized] == [(1, "page_size")]


def test_several_changes_on_a_page_give_a_few_boxes(sample_pdf: bytes) -> None:
    ops = b"".join(b"0 g %d %d 10 10 re f " % (60 + 60 * (i % 8), 100 + 80 * (i // 8)) for i in range(64))
    found = compare(sample_pdf, append_content(sample_pdf, ops))
    assert 1 <= len(found) <= visual_diff.MAX_BOXES
    assert _contains(_union(d.box for d in found), (60, 100, 490, 670))


def test_a_page_changed_all_over_is_one_box_quickly(sample_pdf: bytes) -> None:
    ops = b"0 g " + b"".join(b"%d %d 2 2 re f " % (20 + (i * 37) % 570, 20 + (i * 53) % 750) for i in range(4000))
    found = compare(sample_pdf, append_content(sample_pdf, ops))
    assert len(found) == 1 and _contains(found[0].box, (25, 25, 585, 765), slack=10)


def _union(boxes) -> tuple[float, float, float, float]:  # type: ignore[no-untyped-def]
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def test_an_exhausted_budget_names_the_pages_not_compared(sample_pdf: bytes) -> None:
    found = compare(sample_pdf, append_page(sample_pdf), budget_seconds=0)
    assert [(d.page, d.kind) for d in found] == [(5, "page_count"), (1, "not_compared")]
    assert found[1].text.en.startswith("Pages 1–4 were not compared")
    assert annotation_overlaps(sample_pdf, [(0, (0, 0, 10, 10))], budget_seconds=0)[0].kind == "not_compared"


def test_a_slow_page_is_abandoned_mid_render(sample_pdf: bytes) -> None:
    """Thousands of wide strokes (half a second to draw): the render stops at the deadline, not
    when the page ends."""
    ops = b"20 w 0 G " + b"".join(b"%d 0 m %d 792 l S " % (i % 612, (i * 7) % 612) for i in range(3_000))
    slow = append_content(sample_pdf, ops)
    started = time.monotonic()
    full = compare(sample_pdf, slow, budget_seconds=30)
    full_time = time.monotonic() - started
    assert [d.kind for d in full] == ["pixels"]
    started = time.monotonic()
    cut = compare(sample_pdf, slow, budget_seconds=0.02)
    assert [(d.page, d.kind) for d in cut] == [(1, "not_compared")]
    assert time.monotonic() - started < full_time / 3


def test_unreadable_files_are_not_compared_never_raised(sample_pdf: bytes) -> None:
    assert [d.kind for d in compare(b"%PDF-1.7 not really", sample_pdf)] == ["not_compared"]
    assert [d.kind for d in compare(sample_pdf, b"")] == ["not_compared"]


def test_a_huge_page_is_rendered_small() -> None:
    big = huge_page(14_400)
    cache = RenderCache()
    found = compare(big, append_content(big, b"1 g 1500 1500 200 200 re f"), cache=cache)
    assert [d.kind for d in found] == ["pixels"] and _close(found[0].box, (1500, 1500, 1700, 1700), within=15)
    assert 0 < cache.nbytes <= 2 * visual_diff.MAX_PIXELS


def test_renderings_are_cached_bounded_and_cleared(sample_pdf: bytes) -> None:
    forged = add_annotation(sample_pdf, (60, 700, 200, 745))
    cache = RenderCache()
    first = compare(sample_pdf, forged, cache=cache)
    misses = cache.misses
    assert misses == 8 and cache.hits == 0  # 4 pages, two files
    assert compare(sample_pdf, forged, cache=cache) == first
    assert cache.misses == misses and cache.hits == 8
    # another upload against the same signed version renders only the new file
    compare(sample_pdf, append_page(sample_pdf), cache=cache)
    assert cache.misses == misses + 4

    small = RenderCache(max_entries=3)
    compare(sample_pdf, forged, cache=small)
    assert len(small) == 3
    one_page = 612 * 792 * (visual_diff.DPI / 72) ** 2
    tight = RenderCache(max_bytes=int(2.5 * one_page))
    compare(sample_pdf, forged, cache=tight)
    assert len(tight) == 2 and tight.nbytes <= tight.max_bytes
    tight.clear()
    assert len(tight) == 0 and tight.nbytes == 0


def test_threads_render_one_at_a_time_and_agree(sample_pdf: bytes) -> None:
    cases = [(sample_pdf, add_annotation(sample_pdf, (60, 700, 200, 745))),
             (sample_pdf, append_content(sample_pdf, b"0 g 100 100 200 50 re f")),
             (sample_pdf, append_page(sample_pdf)),
             (sample_pdf, sample_pdf)]
    expected = [compare(a, b) for a, b in cases]
    cache = RenderCache()
    results: dict[int, list] = {i: [] for i in range(len(cases))}  # type: ignore[type-arg]

    def work(i: int) -> None:
        for _ in range(5):
            results[i].append(compare(*cases[i], cache=cache if i % 2 else None, budget_seconds=30))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == [expected[i]] * 5 for i, r in results.items())
