"""Visible signatures as Decree 30/2020/NĐ-CP (Appendix I) lays them out for electronic documents.

- person: title above (bold), the handwritten-signature image centred, full name below (bold);
  the verification QR code on the right (the seal covers the left) when the document type wants one,
  on an opaque white quiet zone, with the document code printed under it (``group_code``) and one
  caption line saying where to type that code (``lookup_caption``).
- seal: the agency's red seal image at its real size, covering about a third of the person's
  signature on its left side ("trùm lên khoảng 1/3 chữ ký về phía bên trái"), below the title; under
  the ring, as text, the organisation and the signing time (ISO 8601, +07:00); only after a person
  has signed (Art. 32).
- copy (SAO Y, SAO LỤC, TRÍCH SAO, attachments): a text block at the top right of page 1 — copy
  form or document number, agency, signing time in Vietnam time (ISO 8601) — serif 10 pt black.

Placement (``_automatic``, ``placement.py``): the one page the stamp is for (the last, or the one asked
for) is rendered once as it is seen, and the stamp goes where every pixel it covers is white; with no room
there, on a page added at the end (``PlannedAppearance.new_page``). No other page is loaded or rendered.
Rotated pages get an upright stamp (a /Matrix on the appearance), and PDF/A-1 files get stencil masks
instead of soft masks. docs/stamp.md says all this for integrators.

Text is set in an embedded TrueType subset (``signing/fonts.py``) so every diacritic renders and
extracts. The QR code is drawn as vector rectangles. Images are parsed once per content hash.

QR size: the code carries the citizen page's URL plus the offline seal (``offline_seal.py``), some
300-350 characters, so it is printed 32 mm wide at error-correction level M: versions up to 15
(77 modules) keep each module at 0.4 mm or more, which an ordinary phone camera reads on a printed
A4 page; a longer seal drops to level L rather than to smaller modules (``_qr_code``, built by zxing-cpp).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO
from typing import Any, Literal
from zoneinfo import ZoneInfo

import zxingcpp
from PIL import Image
from pyhanko.pdf_utils import content, generic, layout
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.images import pil_image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, enumerate_sig_fields
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from core.settings import Settings
from signing.create.fonts import StampFontEngine, StampFonts, load_stamp_fonts
from signing.create.placement import MARGIN, Box, drawable, free_spot, hidden_on_screen, render_page
from signing.errors import BadAppearance
from signing.verify.visual_diff import Rendering

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
MM = 72 / 25.4
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
# The QR code sits on an opaque white field that leaves at least four modules of quiet zone on every
# side (ISO/IEC 18004), 12 pt or more; under it, on the same white field, the document code in large
# bold letters (``group_code``: what a citizen types at /v), and one caption line under the stamp.
QUIET = 12.0
QUIET_MODULES = 4
CODE_SIZE = 12.0
CAPTION_SIZE = 6.5
CODE_BOTTOM = 10.0  # the white field starts here: the caption line runs below it
QR_COLUMN = QR_SIZE + 2 * QUIET
QR_STACK = CODE_BOTTOM + CODE_SIZE + 2 + 2 * QUIET + QR_SIZE  # the height the QR column needs
PERSON_SIZE = (290.0, 142.0)  # 102 × 50 mm; the signature part (the stamp less the QR column) is ~169 pt
PERSON_SIZE_NO_QR = (170.0, 120.0)
MIN_SIGNATURE_PART = 100.0  # a forced box narrower than this beside the QR column cannot hold the name
SEAL_TEXT = 20.0  # under the seal ring: the organisation's name and the signing time, as text
SEAL_TITLE_ROOM = 42.0  # the seal ring's top stays this far below the person stamp's top: the title shows
LEGACY_PERSON_WIDTH, LEGACY_QR_SIZE = 230.0, 20 * MM  # stamps made before the offline seal (URL-only QR)
LEGACY_OFFLINE_WIDTH = 264.0  # stamps made with the offline seal, before the quiet zone
COPY_WIDTH = 264.0
A4 = (595.0, 842.0)
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
    new_page: bool = False  # no free place on the document's pages: the stamp is on a page added at the end


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


@lru_cache(maxsize=64)  # kept: pure (an image's bytes → its compressed RGB and alpha samples), bounded
def _encoded(data_hash: str, data: bytes) -> tuple[int, int, bytes, bytes]:  # the hash is the cache key
    image = _image(data_hash, data)
    return (image.width, image.height, zlib.compress(image.convert("RGB").tobytes()),
            zlib.compress(image.getchannel("A").tobytes()))


def _image_xobject(data: bytes, writer: BasePdfFileWriter) -> generic.IndirectObject:
    """An enrolled image as an RGB image XObject with its alpha as a soft mask (what pyHanko's ``pil_image``
    writes), its samples compressed once per image rather than once per signature."""
    width, height, rgb, alpha = _encoded(hashlib.sha256(data).hexdigest(), data)

    def xobject(color_space: str, samples: bytes) -> generic.StreamObject:
        return generic.StreamObject({
            pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Image"),
            pdf_name("/Width"): generic.NumberObject(width), pdf_name("/Height"): generic.NumberObject(height),
            pdf_name("/ColorSpace"): pdf_name(color_space), pdf_name("/BitsPerComponent"): generic.NumberObject(8),
            pdf_name("/Filter"): pdf_name("/FlateDecode"),
        }, encoded_data=samples)

    image = xobject("/DeviceRGB", rgb)
    image[pdf_name("/SMask")] = writer.add_object(xobject("/DeviceGray", alpha))
    return writer.add_object(image)


_DARK_RUN = re.compile(rb"[\x00-\x7f]+")  # zxing-cpp's module image: 0 dark, 255 light


@dataclass(frozen=True)
class QrCode:
    """A QR code's modules, one row of bytes each (below 128: dark; no quiet zone), its version and its
    error-correction level (``"M"`` or ``"L"``)."""

    rows: tuple[bytes, ...]
    error_correction: str

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def version(self) -> int:
        return (self.size - 17) // 4

    def dark(self, row: int, col: int) -> bool:
        return self.rows[row][col] < 128


def _qr_code(text: str) -> QrCode:
    """Level M, or L when M would print modules smaller than ``QR_MIN_MODULE_MM`` at ``QR_MM``.

    Built by zxing-cpp (C++, every mask scored as the standard asks): ~0.3 ms for a typical seal,
    against 2-5 ms for pure-Python ``qrcode`` with one fixed mask (``make bench``, section 9)."""
    for level in ("M", "L"):
        code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level=level)
        # one byte per module; zxingcpp.Image exports the buffer protocol, which its stubs do not declare
        image = memoryview(code.to_image(scale=1, add_quiet_zones=False))  # type: ignore[arg-type]
        size = image.shape[0] if image.shape else 0
        if size and QR_MM / size >= QR_MIN_MODULE_MM:
            break
    data = image.tobytes()
    return QrCode(tuple(data[r * size:(r + 1) * size] for r in range(size)), level)


@lru_cache(maxsize=256)  # kept: pure (a URL → its QR code path), bounded
def _qr_path(url: str) -> tuple[bytes, int]:
    """``re`` operators for the dark modules (one per horizontal run) and the module count."""
    code = _qr_code(url)
    size = code.size
    parts = [b"%d %d %d 1 re" % (run.start(), size - row - 1, run.end() - run.start())
             for row, cells in enumerate(code.rows) for run in _DARK_RUN.finditer(cells)]
    return b" ".join(parts) + b" f", size


def _fmt(value: float) -> bytes:
    return (b"%.3f" % value).rstrip(b"0").rstrip(b".")


def group_code(document_id: str) -> str:
    """The document code as printed under the QR code: the id's own characters in groups of four
    (``RZ7P-EK2V-V2LF``); the id alphabet (``service.ID_ALPHABET``) has no 0/O or 1/I to confuse."""
    return "-".join(document_id[i:i + 4] for i in range(0, len(document_id), 4))


def _document_id(url: str) -> str | None:
    """The document id in a citizen page URL (``…/v/<id>#<seal>``)."""
    path = url.split("#", 1)[0].rstrip("/")
    head, _, tail = path.rpartition("/v/")
    return tail if head and tail and "/" not in tail else None


def lookup_caption(base_url: str) -> str:
    """The caption under the QR code: where a citizen without a camera types the code."""
    host = base_url.split("://", 1)[-1].rstrip("/")
    return f"Quét mã hoặc nhập mã tại {host}/v"


# the rotation that stands a stamp upright on a page shown turned by /Rotate (clockwise, degrees)
_UPRIGHT: dict[int, tuple[int, int, int, int]] = {90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}


@dataclass(frozen=True)
class Decree30StampStyle(BaseStampStyle):
    facts: StampFacts | None = None
    fonts: StampFonts | None = None
    border_width: int = 0
    rotation: int = 0  # the page's /Rotate: the stamp is drawn turned back, upright as the page is seen
    caption: str | None = None  # under the QR code (``lookup_caption``)
    no_soft_masks: bool = False  # PDF/A-1: images get a 1-bit stencil mask, never an /SMask

    def create_stamp(self, writer: Any, box: layout.BoxConstraints, text_params: dict[str, Any]) -> Decree30Stamp:
        if self.rotation in (90, 270):
            box = layout.BoxConstraints(width=box.height, height=box.width)
        return Decree30Stamp(writer, self, box)


class Decree30Stamp(BaseStamp):
    style: Decree30StampStyle

    def as_form_xobject(self) -> Any:
        """The appearance, with a /Matrix that turns it against the page's /Rotate: a viewer (and a printer)
        shows it upright. The turned bounding box is then fitted to the widget's rectangle (ISO 32000-1 12.5.5)."""
        xobject = super().as_form_xobject()
        turn = _UPRIGHT.get(self.style.rotation)
        if turn is not None:
            w, h = self.box.width, self.box.height
            e, f = {90: (h, 0.0), 180: (w, h), 270: (0.0, w)}[self.style.rotation]
            xobject[pdf_name("/Matrix")] = generic.ArrayObject(
                generic.FloatObject(v) for v in (*turn, e, f))
        return xobject

    def _text(self, engine: StampFontEngine, name: str, text: str, x_center: float | None, x_left: float | None,
              y: float, max_width: float | None = None, x_right: float | None = None) -> bytes:
        """One line; shrunk (down to 6 pt) rather than cut when it is wider than ``max_width``."""
        ops, width = engine.line(text)
        size: float = engine.font_size
        if max_width and width > max_width:
            size = max(6.0, size * max_width / width)
            width = width * size / engine.font_size
        if x_right is not None:
            x = max(0.0, x_right - width)
        else:
            x = x_left if x_left is not None else (x_center or 0) - width / 2
        self.set_resource(content.ResourceType.FONT, pdf_name(name), engine.as_resource())
        return b"BT %s %s Tf %s %s Td %s ET" % (name.encode(), _fmt(size), _fmt(x), _fmt(y), ops)

    def _qr(self, url: str, x: float, y: float, size: float) -> bytes:
        path, modules = _qr_path(url)
        scale = size / modules
        return b"q 0 g %s 0 0 %s %s %s cm %s Q" % (_fmt(scale), _fmt(scale), _fmt(x), _fmt(y), path)

    def _qr_block(self, url: str, right: float) -> bytes:
        """The QR code, its white quiet zone and the document code under it, in a column ending at ``right``."""
        facts, fonts = self.style.facts, self.style.fonts
        assert facts is not None and fonts is not None and self.writer is not None
        modules = _qr_path(url)[1]
        quiet = max(QUIET, QUIET_MODULES * QR_SIZE / modules)
        column = QR_SIZE + 2 * quiet
        left = right - column
        qr_y = CODE_BOTTOM + CODE_SIZE + 2 + quiet
        top = qr_y + QR_SIZE + quiet
        ops = [b"q 1 g %s %s %s %s re f Q" % (_fmt(left), _fmt(CODE_BOTTOM), _fmt(column), _fmt(top - CODE_BOTTOM)),
               self._qr(url, left + quiet, qr_y, QR_SIZE)]
        document_id = _document_id(url)
        if document_id:
            code = StampFontEngine(self.writer, fonts.bold, CODE_SIZE)
            ops.append(self._text(code, "/KysoC", group_code(document_id), left + column / 2, None,
                                  CODE_BOTTOM + 3, column))
        if self.style.caption:
            small = StampFontEngine(self.writer, fonts.regular, CAPTION_SIZE)
            ops.append(self._text(small, "/KysoS", self.style.caption, None, None, 2.5, self.box.width,
                                  x_right=right))
        return b" ".join(ops)

    def _picture(self, data: bytes, x: float, y: float, width: float, height: float) -> bytes:
        image = _load_image(data)
        scale = min(width / image.width, height / image.height)
        w, h = image.width * scale, image.height * scale
        name = "/Img" + hashlib.sha256(data).hexdigest()[:12]
        assert self.writer is not None
        ref = _stencilled(image, self.writer) if self.style.no_soft_masks else _image_xobject(data, self.writer)
        self.set_resource(content.ResourceType.XOBJECT, pdf_name(name), ref)
        return b"q %s 0 0 %s %s %s cm %s Do Q" % (_fmt(w), _fmt(h), _fmt(x + (width - w) / 2),
                                                  _fmt(y + (height - h) / 2), name.encode())

    def _render_inner_content(self) -> list[bytes]:
        facts, fonts = self.style.facts, self.style.fonts
        assert facts is not None and fonts is not None and self.writer is not None
        width, height = self.box.width, self.box.height
        ops: list[bytes] = [b"q 0 g"]
        if facts.kind == "seal":
            ring = max(10.0, min(width, height - SEAL_TEXT))
            if facts.seal_image:
                ops.append(self._picture(facts.seal_image, 0, height - ring, width, ring))
            # the organisation and the signing time as text under the ring (Decree 30/2020 App. I)
            bold = StampFontEngine(self.writer, fonts.bold, 7)
            regular = StampFontEngine(self.writer, fonts.regular, 7)
            ops.append(self._text(bold, "/KysoB", facts.agency[:80], width / 2, None, 10.5, width))
            ops.append(self._text(regular, "/KysoR", _iso(facts.signing_time), width / 2, None, 2.5, width))
        elif facts.kind == "copy":
            regular = StampFontEngine(self.writer, fonts.regular, 10)
            text_left = 0.0
            if facts.verify_url:
                ops.append(self._qr_block(facts.verify_url, QR_COLUMN))
                text_left = QR_COLUMN + QR_GAP
            lines = [facts.copy_form or facts.document_number or "", facts.agency, _iso(facts.signing_time)]
            for index, line in enumerate(lines):
                ops.append(self._text(regular, "/KysoR", line, None, text_left, height - 11 * (index + 1),
                                      width - text_left))
        else:
            # the QR goes on the right: the agency seal will cover the left third (Decree 30 Art. 32)
            bold = StampFontEngine(self.writer, fonts.bold, 11)
            right: float = width
            name_y = 4.0
            if facts.verify_url:
                ops.append(self._qr_block(facts.verify_url, width))
                right = width - QR_COLUMN - QR_GAP
                name_y = CODE_BOTTOM + 2
            center = right / 2
            title_lines = [t.strip().upper() for t in (facts.title or "").splitlines() if t.strip()]
            y = height - 12
            for line in title_lines[:3]:
                ops.append(self._text(bold, "/KysoB", line, center, None, y, right))
                y -= 13
            if facts.signature_image:
                ops.append(self._picture(facts.signature_image, 0, name_y + 14, right, y - name_y - 12))
            ops.append(self._text(bold, "/KysoB", facts.signer_name, center, None, name_y, right))
        ops.append(b"Q")
        return ops


def _iso(when: dt.datetime) -> str:
    """Vietnam time, ISO 8601 with its offset: 2026-12-06T09:30:00+07:00."""
    return when.astimezone(VIETNAM).replace(microsecond=0).isoformat()


def _stencilled(image: Image.Image, writer: Any) -> Any:
    """The image without its alpha channel, masked by a 1-bit stencil where it was transparent (an explicit
    /Mask, which PDF/A-1 allows, instead of the /SMask soft mask it forbids, ISO 19005-1 6.4)."""
    rgba = image.convert("RGBA")
    ref = pil_image(rgba.convert("RGB"), writer)
    alpha = rgba.getchannel("A")
    lowest = alpha.getextrema()[0]
    if isinstance(lowest, (int, float)) and lowest < 128:
        hole = alpha.point(lambda a: 255 if a < 128 else 0).convert("1")  # 1 = masked out
        mask = generic.StreamObject({
            pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Image"),
            pdf_name("/Width"): generic.NumberObject(hole.width),
            pdf_name("/Height"): generic.NumberObject(hole.height),
            pdf_name("/ImageMask"): generic.BooleanObject(True),
            pdf_name("/BitsPerComponent"): generic.NumberObject(1),
        }, stream_data=hole.tobytes())
        mask.compress()
        image_dict = ref.get_object()
        image_dict[pdf_name("/Mask")] = writer.add_object(mask)
    return ref


def _fonts(settings: Settings) -> StampFonts:
    return load_stamp_fonts(settings.stamp_font, settings.stamp_font_bold)


def _page_box(writer: IncrementalPdfFileWriter, index: int) -> tuple[float, float, float, float]:
    page = writer.root["/Pages"]
    try:
        page_obj = writer.find_page_for_modification(index)[0].get_object()
    except Exception:  # noqa: BLE001
        page_obj = page
    media = _normal(_inherited(page_obj, "/MediaBox") or [0, 0, 595, 842])
    crop = _normal(_inherited(page_obj, "/CropBox") or media)
    # what a reader shows is the crop box clipped to the media box
    x1, y1 = max(media[0], crop[0]), max(media[1], crop[1])
    x2, y2 = min(media[2], crop[2]), min(media[3], crop[3])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else media


def _inherited(page: Any, key: str) -> Any:
    """A page attribute, from the page or the nearest page tree node above it (ISO 32000-1 7.7.3.4)."""
    node = page
    for _ in range(64):
        if key in node:
            return node[key]  # pyHanko resolves an indirect value on access
        if "/Parent" not in node:
            return None
        node = node["/Parent"].get_object()
    return None


def _normal(box: Any) -> tuple[float, float, float, float]:
    box = box.get_object() if hasattr(box, "get_object") else box
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
    """The 0-based index of the page object ``page_ref`` (a widget's /P), found in one walk of the page tree
    that reads the page objects before it and no content; the last page when it is not a page of the tree."""
    last = _page_count(writer) - 1
    if page_ref is None:
        return last
    index, seen = 0, set()
    stack: list[Any] = [writer.root.raw_get("/Pages")]
    while stack and index <= last:
        ref = stack.pop()
        if not isinstance(ref, generic.IndirectObject) or ref.reference in seen:
            continue
        seen.add(ref.reference)
        node = ref.get_object()
        if node.get("/Type") == "/Pages" or "/Kids" in node:
            kids = node.get("/Kids", generic.ArrayObject())
            stack.extend(reversed([kids.raw_get(i) for i in range(len(kids))]))
        else:
            if ref.reference == page_ref:
                return index
            index += 1
    return last


def _seal_size(image: bytes | None) -> float:
    if not image:
        return DEFAULT_SEAL_MM * MM
    picture = _load_image(image)
    dpi = picture.info.get("dpi") if hasattr(picture, "info") else None
    if dpi and dpi[0] > 1:
        return picture.width / float(dpi[0]) * 72
    return DEFAULT_SEAL_MM * MM


def _style(writer: IncrementalPdfFileWriter, facts: StampFacts, settings: Settings, index: int
           ) -> Decree30StampStyle:
    return Decree30StampStyle(facts=facts, fonts=_fonts(settings), rotation=_rotation(writer, index),
                              caption=lookup_caption(settings.base_url) if facts.verify_url else None,
                              no_soft_masks=_is_pdfa1(writer))


def _rotation(writer: IncrementalPdfFileWriter, index: int) -> int:
    """The page's /Rotate (inherited through the page tree), as 0, 90, 180 or 270."""
    try:
        node: Any = writer.find_page_for_modification(index)[0].get_object()
    except Exception:  # noqa: BLE001 - a page pyHanko cannot find is refused later, by the signature itself
        return 0
    for _ in range(64):
        if "/Rotate" in node:
            try:
                return round(float(node["/Rotate"]) / 90) % 4 * 90
            except (TypeError, ValueError):
                return 0
        if "/Parent" not in node:
            break
        node = node["/Parent"].get_object()
    return 0


# pdfaid:part="1" (an attribute) or <pdfaid:part …>1</pdfaid:part> (an element)
_PDFA1 = re.compile(rb"pdfaid:part(?:\s*=\s*[\"']|[^<>]*>)\s*1\s*[\"'<]")


def _is_pdfa1(writer: IncrementalPdfFileWriter) -> bool:
    """Whether the document claims PDF/A-1 in its XMP metadata (ISO 19005-1 6.7.11): then nothing kyso adds
    may use transparency."""
    if "/Metadata" not in writer.root:
        return False
    try:
        # through [] only: pyHanko then reads it as its XMP MetadataStream and, on writing, updates that XMP
        # in place; read any other way, it is cached as a plain stream and replaced by a new XMP packet
        # without the PDF/A identification
        data = writer.root["/Metadata"].data
    except Exception:  # noqa: BLE001 - unreadable metadata claims nothing
        return False
    return bool(_PDFA1.search(data[:65536]))


def _needed(facts: StampFacts) -> tuple[float, float]:
    """The smallest box (upright, points) that holds this stamp with its 32 mm QR code and legible text."""
    if not facts.verify_url or facts.kind == "seal":
        return 10.0, 10.0
    return QR_COLUMN + QR_GAP + MIN_SIGNATURE_PART, QR_STACK


def _check_room(facts: StampFacts, width: float, height: float, rotation: int) -> None:
    if rotation in (90, 270):
        width, height = height, width
    need_w, need_h = _needed(facts)
    if width < need_w - 0.5 or height < need_h - 0.5:
        raise BadAppearance(f"the stamp box is {width:.0f} × {height:.0f} points as the page is seen; the stamp "
                            f"with its 32 mm QR code needs at least {need_w:.0f} × {need_h:.0f} points: give a "
                            "larger box, or leave the box out and kyso finds a free place (or adds a page)")


def plan_appearance(writer: IncrementalPdfFileWriter, facts: StampFacts, placement: Placement,
                    settings: Settings, pdf: bytes | None = None) -> PlannedAppearance:
    """Choose the field and the stamp for one signature; raises ``BadAppearance`` for impossible requests.

    Without a box, the stamp goes where the rendered page is blank (``_automatic``); when no page has room,
    on a new last page (``PlannedAppearance.new_page``), which this adds to ``writer``."""
    fields = _existing_fields(writer)
    if placement.field_name and placement.field_name in fields:
        if fields[placement.field_name][0]:
            raise BadAppearance(f"the field {placement.field_name!r} is already signed; name an empty field "
                                "or leave the field out to add a new one")
        if placement.invisible:
            return PlannedAppearance(placement.field_name, None, None)
        where = _field_rect(writer, fields[placement.field_name][1])
        index = where[0] if where else _page_count(writer) - 1
        if where is not None:
            x1, y1, x2, y2 = where[1]
            _check_room(facts, x2 - x1, y2 - y1, _rotation(writer, index))
        return PlannedAppearance(placement.field_name, None, _style(writer, facts, settings, index))
    name = placement.field_name or _free_name(fields)
    if placement.invisible:
        return PlannedAppearance(name, SigFieldSpec(name), None)
    new_page = False
    if placement.box is not None:
        index = _page_index(writer, placement.page)
        x1, y1, x2, y2 = placement.box
        px1, py1, px2, py2 = _page_box(writer, index)
        if x2 - x1 < 10 or y2 - y1 < 10:
            raise BadAppearance("the stamp box must be at least 10 × 10 points (x1,y1,x2,y2 with x2 > x1, y2 > y1)")
        if x1 < px1 or y1 < py1 or x2 > px2 or y2 > py2:
            raise BadAppearance(f"the stamp box {placement.box} is outside page {index + 1} "
                                f"({px1:g},{py1:g},{px2:g},{py2:g})")
        _check_room(facts, x2 - x1, y2 - y1, _rotation(writer, index))
        box = (x1, y1, x2, y2)
    else:
        index, box, new_page = _automatic(writer, facts, placement.page, pdf)
    bx1, by1, bx2, by2 = box
    spec = SigFieldSpec(name, on_page=index, box=(round(bx1), round(by1), round(bx2), round(by2)))
    return PlannedAppearance(name, spec, _style(writer, facts, settings, index), new_page=new_page)


def _field_rect(writer: IncrementalPdfFileWriter, ref: Any) -> tuple[int, tuple[float, float, float, float]] | None:
    widget = ref.get_object()
    if "/Rect" not in widget and widget.get("/Kids"):
        widget = widget["/Kids"][0].get_object()
    rect = widget.get("/Rect")
    if not rect:
        return None
    page_ref = widget.get_value_as_reference("/P") if "/P" in widget else None
    return _index_of_page(writer, page_ref), _normal(rect)


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
    return _field_rect(writer, found[1])


def _to_user(box: Box, page: Box, rotation: int) -> Box:
    """A box given as the page is seen (origin bottom left of the turned page) in the page's user space."""
    px1, py1, px2, py2 = page
    x1, y1, x2, y2 = box
    if rotation == 90:
        corners = ((px2 - y1, py1 + x1), (px2 - y2, py1 + x2))
    elif rotation == 180:
        corners = ((px2 - x1, py2 - y1), (px2 - x2, py2 - y2))
    elif rotation == 270:
        corners = ((px1 + y1, py2 - x1), (px1 + y2, py2 - x2))
    else:
        corners = ((px1 + x1, py1 + y1), (px1 + x2, py1 + y2))
    (ax, ay), (bx, by) = corners
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _to_seen(box: Box, page: Box, rotation: int) -> Box:
    """The inverse of ``_to_user``."""
    px1, py1, px2, py2 = page
    x1, y1, x2, y2 = box
    if rotation == 90:
        corners = ((y1 - py1, px2 - x1), (y2 - py1, px2 - x2))
    elif rotation == 180:
        corners = ((px2 - x1, py2 - y1), (px2 - x2, py2 - y2))
    elif rotation == 270:
        corners = ((py2 - y1, x1 - px1), (py2 - y2, x2 - px1))
    else:
        corners = ((x1 - px1, y1 - py1), (x2 - px1, y2 - py1))
    (ax, ay), (bx, by) = corners
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _seen_size(page: Box, rotation: int) -> tuple[float, float]:
    width, height = page[2] - page[0], page[3] - page[1]
    return (height, width) if rotation in (90, 270) else (width, height)


def _automatic(writer: IncrementalPdfFileWriter, facts: StampFacts, page: int | None,
               pdf: bytes | None = None) -> tuple[int, Box, bool]:
    if facts.kind == "copy":
        index = _page_index(writer, page if page is not None else 1)
        width = COPY_WIDTH if facts.verify_url else 170.0
        height = QR_STACK if facts.verify_url else 36.0
        if pdf is not None:  # the free place nearest the top right of page 1, else its top-right corner
            rendering = _rendered(writer, pdf, index)
            spot = free_spot(rendering, width, height, top=True) if rendering is not None else None
            if spot is not None:
                return index, spot, False
        return index, _corner(writer, index, width, height, top=True), False
    if facts.kind == "seal":
        last = _last_signed_rect(writer)
        if last is None:
            raise BadAppearance("the agency seal is placed over the competent person's visible signature "
                                "(Decree 30/2020 Art. 32), and this document has none; give a page and box")
        index, rect = last
        size = _seal_size(facts.seal_image)
        page_box, rotation = _page_box(writer, index), _rotation(writer, index)
        seen_w, seen_h = _seen_size(page_box, rotation)
        x1, y1, x2, y2 = _to_seen(rect, page_box, rotation)
        # the seal covers about a third of the person's signature on its left (the signature part of a kyso
        # person stamp is the stamp less the QR column on its right), below the title so that it stays legible
        signature_width = max(x2 - x1 - _qr_column(x2 - x1), size / 3)
        left = x1 + signature_width / 3 - size
        top = y2 - min(SEAL_TITLE_ROOM, (y2 - y1) / 3)
        height = size + SEAL_TEXT
        left = min(max(left, 0.0), seen_w - size)
        bottom = min(max(top - height, 0.0), seen_h - height)
        return index, _to_user((left, bottom, left + size, bottom + height), page_box, rotation), False
    width, height = PERSON_SIZE if facts.verify_url else PERSON_SIZE_NO_QR
    # one page only, rendered once: the one asked for, else the last (``placement``); no other page is read
    index = _page_index(writer, page)
    if pdf is not None:
        rendering = _rendered(writer, pdf, index)
        spot = free_spot(rendering, width, height) if rendering is not None else None
        if spot is not None:
            return index, spot, False
    if pdf is None or _signed_before(writer):
        # no rendering to go by, or earlier signatures that a new page would count against: the corner
        return index, _corner(writer, index, width, height, top=False), False
    return _new_page(writer, width, height)


def _rendered(writer: IncrementalPdfFileWriter, pdf: bytes, index: int) -> Rendering | None:
    """Page ``index`` as a viewer shows it (``placement.render_page``), or None: not shown within the budget,
    or with more content than PDFium is asked to parse (``placement.drawable``, on pyHanko's page object)."""
    try:
        page = writer.find_page_for_modification(index)[0].get_object()
        fits = drawable(page, _inherited(page, "/Resources")) and not hidden_on_screen(writer.root, page)
    except Exception:  # noqa: BLE001 - content pyHanko cannot read is not handed to PDFium either: no room
        fits = False
    return render_page(pdf, index) if fits else None


def _corner(writer: IncrementalPdfFileWriter, index: int, width: float, height: float, *, top: bool) -> Box:
    """The bottom-right (or top-right) corner of the page as it is seen, inside the margin when it fits."""
    page_box, rotation = _page_box(writer, index), _rotation(writer, index)
    seen_w, seen_h = _seen_size(page_box, rotation)
    margin_x = MARGIN if seen_w >= width + 2 * MARGIN else max(0.0, (seen_w - width) / 2)
    margin_y = MARGIN if seen_h >= height + 2 * MARGIN else max(0.0, (seen_h - height) / 2)
    x = max(0.0, seen_w - margin_x - width)
    y = max(0.0, seen_h - margin_y - height) if top else margin_y
    return _to_user((x, y, x + width, y + height), page_box, rotation)


def _signed_before(writer: IncrementalPdfFileWriter) -> bool:
    return any(signed for signed, _ in _existing_fields(writer).values())


def _new_page(writer: IncrementalPdfFileWriter, width: float, height: float) -> tuple[int, Box, bool]:
    """A blank page after the last one, as large as the last page as it is seen (A4 when that cannot hold the
    stamp and its margins), with the stamp at its top right."""
    last = _page_count(writer) - 1
    page_w, page_h = _seen_size(_page_box(writer, last), _rotation(writer, last))
    if page_w < width + 2 * MARGIN or page_h < height + 2 * MARGIN:
        page_w, page_h = A4
    page = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Page"),
        pdf_name("/MediaBox"): generic.ArrayObject(generic.FloatObject(v) for v in (0, 0, page_w, page_h)),
        pdf_name("/Resources"): generic.DictionaryObject(),
        pdf_name("/Contents"): writer.add_object(generic.StreamObject(stream_data=b"")),
    })
    writer.insert_page(page)
    x, y = page_w - MARGIN - width, page_h - MARGIN - height
    return last + 1, (x, y, x + width, y + height), True


def _qr_column(width: float) -> float:
    """The width of the QR column on the right of a person stamp this wide (0: a stamp without QR)."""
    if width >= PERSON_SIZE[0] - 1:
        return QR_COLUMN + QR_GAP
    if width >= LEGACY_OFFLINE_WIDTH - 1:
        return QR_SIZE + QR_GAP
    if width >= LEGACY_PERSON_WIDTH - 1:
        return LEGACY_QR_SIZE + QR_GAP
    return 0.0


__all__ = ["Decree30StampStyle", "Placement", "PlannedAppearance", "StampFacts", "group_code", "lookup_caption",
           "plan_appearance", "planned_box"]
