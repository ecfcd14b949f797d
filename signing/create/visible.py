"""Visible signatures as Decree 30/2020/NĐ-CP (Appendix I) lays them out for electronic documents.

- person: title above (bold), the handwritten-signature image centred, full name below (bold);
  the verification QR code on the right (the seal covers the left) when the document type wants one.
- seal: the agency's red seal image at its real size, covering about a third of the person's
  signature on its left side ("trùm lên khoảng 1/3 chữ ký về phía bên trái"); only after a person
  has signed (Art. 32).
- copy (SAO Y, SAO LỤC, TRÍCH SAO, attachments): a text block at the top right of page 1 — copy
  form or document number, agency, signing time in Vietnam time (ISO 8601) — serif 10 pt black.

Text is set in an embedded TrueType subset (``signing/fonts.py``) so every diacritic renders and
extracts. The QR code is drawn as vector rectangles. Images are parsed once per content hash.

QR size: the code carries the citizen page's URL plus the offline seal (``offline_seal.py``), some
300-350 characters, so it is printed 32 mm wide at error-correction level M: versions up to 15
(77 modules) keep each module at 0.4 mm or more, which an ordinary phone camera reads on a printed
A4 page; a longer seal drops to level L rather than to smaller modules (``_qr_code``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO
from typing import Any, Literal
from zoneinfo import ZoneInfo

import qrcode
from PIL import Image
from pyhanko.pdf_utils import content, layout
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, enumerate_sig_fields
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from core.settings import Settings
from signing.create.fonts import StampFontEngine, StampFonts, load_stamp_fonts
from signing.errors import BadAppearance

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
MM = 72 / 25.4
MARGIN = 36.0
# The QR code carries the citizen page's URL and the offline seal (``offline_seal.py``): about 300-350
# characters in byte mode, QR version 13-15 (69-77 modules) at error-correction level M. Printed
# 32 mm wide that is at least 0.41 mm per module, which an ordinary phone camera reads from a printed
# A4 page (0.33 mm is the usual floor for phone scanning; 0.4 mm leaves room for cheap printers and
# photocopies). Level M (15 % recovery) suits a code printed on paper next to a red seal; a longer
# seal that would need modules under 0.4 mm at M is encoded at L instead (see ``_qr_path``). The
# person stamp grew from 230 to 264 pt so the signature part beside the QR keeps its width.
QR_MM = 32.0
QR_SIZE = QR_MM * MM
QR_MIN_MODULE_MM = 0.4
QR_GAP = 6.0
PERSON_SIZE = (264.0, 120.0)  # 93 × 42 mm; the signature part (the stamp less the QR column) is 167 pt
LEGACY_PERSON_WIDTH, LEGACY_QR_SIZE = 230.0, 20 * MM  # stamps made before the offline seal (URL-only QR)
COPY_WIDTH = 264.0
DEFAULT_SEAL_MM = 36.0


@dataclass(frozen=True)
class StampFacts:
    kind: Literal["person", "seal", "copy"]
    signer_name: str
    title: str | None
    agency: str
    signing_time: dt.datetime
    verify_url: str | None = None
    signature_image: bytes | None = None
    seal_image: bytes | None = None
    copy_form: str | None = None
    document_number: str | None = None


@dataclass(frozen=True)
class Placement:
    field_name: str | None = None
    page: int | None = None  # 1-based; negative counts from the end
    box: tuple[float, float, float, float] | None = None
    invisible: bool = False


@dataclass(frozen=True)
class PlannedAppearance:
    field_name: str
    new_field: SigFieldSpec | None
    stamp_style: BaseStampStyle | None
    text_params: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=64)  # kept: pure (an image's bytes → the decoded image), bounded
def _image(data_hash: str, data: bytes) -> Image.Image:  # the hash is the cache key
    try:
        image = Image.open(BytesIO(data))
        image.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types
        raise BadAppearance(f"the enrolled stamp image cannot be read ({exc})") from None
    return image.convert("RGBA")


def _load_image(data: bytes) -> Image.Image:
    return _image(hashlib.sha256(data).hexdigest(), data)


def _qr_code(text: str) -> qrcode.QRCode:
    """Level M, or L when M would print modules smaller than ``QR_MIN_MODULE_MM`` at ``QR_MM``."""
    for level in (qrcode.constants.ERROR_CORRECT_M, qrcode.constants.ERROR_CORRECT_L):
        # a fixed mask: any of the eight is valid, and scoring all eight costs ~20 ms per code
        code = qrcode.QRCode(error_correction=level, border=0, mask_pattern=4)
        code.add_data(text)
        code.make(fit=True)
        if QR_MM / (17 + 4 * code.version) >= QR_MIN_MODULE_MM:
            break
    return code


@lru_cache(maxsize=256)  # kept: pure (a URL → its QR code path), bounded
def _qr_path(url: str) -> tuple[bytes, int]:
    """``re`` operators for the dark modules (one per horizontal run) and the module count."""
    code = _qr_code(url)
    matrix = code.get_matrix()
    size = len(matrix)
    parts = []
    for row, cells in enumerate(matrix):
        y = size - row - 1
        col = 0
        while col < size:
            if cells[col]:
                start = col
                while col < size and cells[col]:
                    col += 1
                parts.append(b"%d %d %d 1 re" % (start, y, col - start))
            else:
                col += 1
    return b" ".join(parts) + b" f", size


def _fmt(value: float) -> bytes:
    return (b"%.3f" % value).rstrip(b"0").rstrip(b".")


@dataclass(frozen=True)
class Decree30StampStyle(BaseStampStyle):
    facts: StampFacts | None = None
    fonts: StampFonts | None = None
    border_width: int = 0

    def create_stamp(self, writer: Any, box: layout.BoxConstraints, text_params: dict[str, Any]) -> Decree30Stamp:
        return Decree30Stamp(writer, self, box)


class Decree30Stamp(BaseStamp):
    style: Decree30StampStyle

    def _text(self, engine: StampFontEngine, name: str, text: str, x_center: float | None, x_left: float | None,
              y: float, max_width: float | None = None) -> bytes:
        """One line; shrunk (down to 6 pt) rather than cut when it is wider than ``max_width``."""
        ops, width = engine.line(text)
        size: float = engine.font_size
        if max_width and width > max_width:
            size = max(6.0, size * max_width / width)
            width = width * size / engine.font_size
        x = x_left if x_left is not None else (x_center or 0) - width / 2
        self.set_resource(content.ResourceType.FONT, pdf_name(name), engine.as_resource())
        return b"BT %s %s Tf %s %s Td %s ET" % (name.encode(), _fmt(size), _fmt(x), _fmt(y), ops)

    def _qr(self, url: str, x: float, y: float, size: float) -> bytes:
        path, modules = _qr_path(url)
        scale = size / modules
        return b"q 0 g %s 0 0 %s %s %s cm %s Q" % (_fmt(scale), _fmt(scale), _fmt(x), _fmt(y), path)

    def _picture(self, data: bytes, x: float, y: float, width: float, height: float) -> bytes:
        image = _load_image(data)
        scale = min(width / image.width, height / image.height)
        w, h = image.width * scale, image.height * scale
        picture = PdfImage(image, writer=self.writer, name="Img" + hashlib.sha256(data).hexdigest()[:12])
        rendered = picture.render()
        self.import_resources(picture.resources)
        return b"q %s 0 0 %s %s %s cm %s Q" % (_fmt(w / image.width), _fmt(h / image.height),
                                               _fmt(x + (width - w) / 2), _fmt(y + (height - h) / 2), rendered)

    def _render_inner_content(self) -> list[bytes]:
        facts, fonts = self.style.facts, self.style.fonts
        assert facts is not None and fonts is not None and self.writer is not None
        width, height = self.box.width, self.box.height
        ops: list[bytes] = [b"q 0 g"]
        if facts.kind == "seal":
            if facts.seal_image:
                ops.append(self._picture(facts.seal_image, 0, 0, width, height))
            else:
                ops.append(self._text(StampFontEngine(self.writer, fonts.bold, 10), "/KysoB", facts.agency[:60],
                                      width / 2, None, height / 2))
        elif facts.kind == "copy":
            regular = StampFontEngine(self.writer, fonts.regular, 10)
            text_left = 0.0
            if facts.verify_url:
                qr = min(QR_SIZE, height)
                ops.append(self._qr(facts.verify_url, 0, height - qr, qr))
                text_left = qr + QR_GAP
            lines = [facts.copy_form or facts.document_number or "", facts.agency,
                     facts.signing_time.astimezone(VIETNAM).replace(microsecond=0).isoformat()]
            for index, line in enumerate(lines):
                ops.append(self._text(regular, "/KysoR", line, None, text_left, height - 11 * (index + 1),
                                      width - text_left))
        else:
            # the QR goes on the right: the agency seal will cover the left third (Decree 30 Art. 32)
            bold = StampFontEngine(self.writer, fonts.bold, 11)
            right: float = width
            if facts.verify_url:
                qr = min(QR_SIZE, height)
                ops.append(self._qr(facts.verify_url, width - qr, (height - qr) / 2, qr))
                right = width - qr - QR_GAP
            center = right / 2
            title_lines = [t.strip().upper() for t in (facts.title or "").splitlines() if t.strip()]
            y = height - 12
            for line in title_lines[:3]:
                ops.append(self._text(bold, "/KysoB", line, center, None, y, right))
                y -= 13
            name_y = 4.0
            if facts.signature_image:
                ops.append(self._picture(facts.signature_image, 0, name_y + 14, right, y - name_y - 12))
            ops.append(self._text(bold, "/KysoB", facts.signer_name, center, None, name_y, right))
        ops.append(b"Q")
        return ops


def _fonts(settings: Settings) -> StampFonts:
    return load_stamp_fonts(settings.stamp_font, settings.stamp_font_bold)


def _page_box(writer: IncrementalPdfFileWriter, index: int) -> tuple[float, float, float, float]:
    page = writer.root["/Pages"]
    try:
        page_obj = writer.find_page_for_modification(index)[0].get_object()
    except Exception:  # noqa: BLE001
        page_obj = page
    media = _normal(page_obj.get("/MediaBox") or [0, 0, 595, 842])
    crop = _normal(page_obj.get("/CropBox") or media)
    # what a reader shows is the crop box clipped to the media box
    x1, y1 = max(media[0], crop[0]), max(media[1], crop[1])
    x2, y2 = min(media[2], crop[2]), min(media[3], crop[3])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else media


def _normal(box: Any) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def _page_count(writer: IncrementalPdfFileWriter) -> int:
    return int(writer.root["/Pages"]["/Count"])


def _page_index(writer: IncrementalPdfFileWriter, page: int | None) -> int:
    count = _page_count(writer)
    if page is None:
        return count - 1
    if page == 0 or abs(page) > count:
        raise BadAppearance(f"page {page} does not exist: the document has {count} page(s) (1-based, -1 = last)")
    return page - 1 if page > 0 else count + page


def _existing_fields(writer: IncrementalPdfFileWriter) -> dict[str, tuple[bool, Any]]:
    """Signature fields by name: (already signed, widget annotation)."""
    found = {}
    for name, value, ref in enumerate_sig_fields(writer.prev, filled_status=None):
        found[name] = (value is not None, ref)
    return found


def _free_name(fields: dict[str, Any]) -> str:
    n = 1
    while f"Signature{n}" in fields:
        n += 1
    return f"Signature{n}"


def _last_signed_rect(writer: IncrementalPdfFileWriter) -> tuple[int, tuple[float, float, float, float]] | None:
    """The page index and rectangle of the last signed visible signature (the person's, for a seal)."""
    result = None
    for _name, _value, ref in enumerate_sig_fields(writer.prev, filled_status=True):
        widget = ref.get_object()
        rect = widget.get("/Rect")
        if not rect:
            continue
        x1, y1, x2, y2 = (float(v) for v in rect)
        if abs(x2 - x1) < 1 or abs(y2 - y1) < 1:
            continue
        page_ref = widget.get_value_as_reference("/P") if "/P" in widget else None
        index = _index_of_page(writer, page_ref)
        result = (index, (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
    return result


def _index_of_page(writer: IncrementalPdfFileWriter, page_ref: Any) -> int:
    if page_ref is None:
        return _page_count(writer) - 1
    for index in range(_page_count(writer)):
        if writer.find_page_for_modification(index)[1] == page_ref:
            return index
    return _page_count(writer) - 1


def _seal_size(image: bytes | None) -> float:
    if not image:
        return DEFAULT_SEAL_MM * MM
    picture = _load_image(image)
    dpi = picture.info.get("dpi") if hasattr(picture, "info") else None
    if dpi and dpi[0] > 1:
        return picture.width / float(dpi[0]) * 72
    return DEFAULT_SEAL_MM * MM


def plan_appearance(writer: IncrementalPdfFileWriter, facts: StampFacts, placement: Placement,
                    settings: Settings, pdf: bytes | None = None) -> PlannedAppearance:
    """Choose the field and the stamp for one signature; raises ``BadAppearance`` for impossible requests."""
    fields = _existing_fields(writer)
    if placement.field_name and placement.field_name in fields:
        if fields[placement.field_name][0]:
            raise BadAppearance(f"the field {placement.field_name!r} is already signed; name an empty field "
                                "or leave the field out to add a new one")
        style = None if placement.invisible else Decree30StampStyle(facts=facts, fonts=_fonts(settings))
        return PlannedAppearance(placement.field_name, None, style)
    name = placement.field_name or _free_name(fields)
    if placement.invisible:
        return PlannedAppearance(name, SigFieldSpec(name), None)
    style = Decree30StampStyle(facts=facts, fonts=_fonts(settings))
    if placement.box is not None:
        index = _page_index(writer, placement.page)
        x1, y1, x2, y2 = placement.box
        px1, py1, px2, py2 = _page_box(writer, index)
        if x2 - x1 < 10 or y2 - y1 < 10:
            raise BadAppearance("the stamp box must be at least 10 × 10 points (x1,y1,x2,y2 with x2 > x1, y2 > y1)")
        if x1 < px1 or y1 < py1 or x2 > px2 or y2 > py2:
            raise BadAppearance(f"the stamp box {placement.box} is outside page {index + 1} "
                                f"({px1:g},{py1:g},{px2:g},{py2:g})")
        box = (x1, y1, x2, y2)
    else:
        index, box = _automatic(writer, facts, placement.page, pdf)
    bx1, by1, bx2, by2 = box
    spec = SigFieldSpec(name, on_page=index, box=(round(bx1), round(by1), round(bx2), round(by2)))
    return PlannedAppearance(name, spec, style)


def planned_box(writer: IncrementalPdfFileWriter, planned: PlannedAppearance
                ) -> tuple[int, tuple[float, float, float, float]] | None:
    """Where ``planned`` draws its stamp: the 0-based page index and the rectangle in that page's user
    space (points), as the signature will place it; None for an invisible signature, or an existing
    field without a rectangle. For previews (the specialist's page); signing itself uses the plan."""
    if planned.stamp_style is None:
        return None
    if planned.new_field is not None:
        spec = planned.new_field
        if spec.box is None:
            return None
        x1, y1, x2, y2 = (float(v) for v in spec.box)
        return spec.on_page, (x1, y1, x2, y2)
    found = _existing_fields(writer).get(planned.field_name)
    if found is None:
        return None
    widget = found[1].get_object()
    if "/Rect" not in widget and widget.get("/Kids"):
        widget = widget["/Kids"][0].get_object()
    rect = widget.get("/Rect")
    if not rect:
        return None
    page_ref = widget.get_value_as_reference("/P") if "/P" in widget else None
    return _index_of_page(writer, page_ref), _normal(rect)


def _automatic(writer: IncrementalPdfFileWriter, facts: StampFacts, page: int | None,
               pdf: bytes | None = None) -> tuple[int, tuple[float, float, float, float]]:
    if facts.kind == "copy":
        index = _page_index(writer, page if page is not None else 1)
        px1, py1, px2, py2 = _page_box(writer, index)
        width = COPY_WIDTH if facts.verify_url else 170.0
        height = max(36.0, QR_SIZE if facts.verify_url else 36.0)
        return index, (px2 - MARGIN / 2 - width, py2 - MARGIN / 2 - height, px2 - MARGIN / 2, py2 - MARGIN / 2)
    if facts.kind == "seal":
        last = _last_signed_rect(writer)
        if last is None:
            raise BadAppearance("the agency seal is placed over the competent person's visible signature "
                                "(Decree 30/2020 Art. 32), and this document has none; give a page and box")
        index, (x1, y1, x2, y2) = last
        size = _seal_size(facts.seal_image)
        px1, py1, px2, py2 = _page_box(writer, index)
        # the seal covers about a third of the person's signature on its left; the signature part of a
        # kyso person stamp is the stamp less the QR column on its right
        signature_width = max(x2 - x1 - _qr_column(x2 - x1), size / 3)
        left = x1 + signature_width / 3 - size
        bottom = (y1 + y2) / 2 - size / 2
        left = min(max(left, px1), px2 - size)
        bottom = min(max(bottom, py1), py2 - size)
        return index, (left, bottom, left + size, bottom + size)
    index = _page_index(writer, page)
    px1, py1, px2, py2 = _page_box(writer, index)
    width, height = PERSON_SIZE if facts.verify_url else (PERSON_SIZE[0] - QR_SIZE - QR_GAP, PERSON_SIZE[1])
    width, height = min(width, px2 - px1 - 2 * MARGIN), min(height, py2 - py1 - 2 * MARGIN)
    default = (px2 - MARGIN - width, py1 + MARGIN, px2 - MARGIN, py1 + MARGIN + height)
    occupied = _text_boxes(pdf, index) if pdf is not None else []
    if not occupied:
        return index, default
    # bottom right first, then upwards along the right margin, then further left: the first spot
    # that covers no text; if the page is full, the bottom-right corner as Decree 30 places it
    for x1 in (default[0], px1 + (px2 - px1 - width) / 2, px1 + MARGIN):
        y1 = py1 + MARGIN
        while y1 + height <= py1 + (py2 - py1) * 0.6:
            candidate = (x1, y1, x1 + width, y1 + height)
            if not any(_intersects(candidate, box) for box in occupied):
                return index, candidate
            y1 += 12
    return index, default


def _qr_column(width: float) -> float:
    """The width of the QR column on the right of a person stamp this wide (0: a stamp without QR)."""
    if width >= PERSON_SIZE[0] - 1:
        return QR_SIZE + QR_GAP
    if width >= LEGACY_PERSON_WIDTH - 1:
        return LEGACY_QR_SIZE + QR_GAP
    return 0.0


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


MAX_SCANNED_PAGE_BYTES = 2_000_000


def _text_boxes(pdf: bytes, index: int) -> list[tuple[float, float, float, float]]:
    """Approximate boxes of the text printed on a page (position, font size, character count).

    Bounded: pages whose content is larger than ``MAX_SCANNED_PAGE_BYTES`` are not scanned, and any
    failure of the scan just means the default corner is used."""
    import pypdf

    boxes: list[tuple[float, float, float, float]] = []
    try:
        reader = pypdf.PdfReader(BytesIO(pdf), strict=False)
        page = reader.pages[index]
        contents = page.get_contents()
        if contents is None or len(contents.get_data()) > MAX_SCANNED_PAGE_BYTES:
            return []

        def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
            stripped = text.strip()
            if not stripped:
                return
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            scale = abs(tm[3] * cm[3]) or abs(tm[0] * cm[0]) or 1.0
            height = (size or 10) * scale
            longest = max(len(line) for line in stripped.splitlines())
            lines = stripped.count("\n") + 1
            boxes.append((x, y - height * (lines - 1) - height * 0.25, x + longest * height * 0.55, y + height))

        page.extract_text(visitor_text=visit)
    except Exception:  # noqa: BLE001 - placement is a courtesy; a page pypdf cannot read keeps the default
        return []
    return boxes


__all__ = ["Decree30StampStyle", "Placement", "PlannedAppearance", "StampFacts", "plan_appearance", "planned_box"]
