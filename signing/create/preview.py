"""What you see is what you sign: page images of a document as it will be signed, with the stamp's place.

The specialist's page (``/me``) shows every pending document before she approves it: each page
rendered server-side as a PNG (no JavaScript, readable on a phone, a plain link to a larger
rendering for zooming), the page count, and a red box where the visible stamp will be drawn. The
box comes from the signing code itself (``SigningService.stamp_preview``: the intake's bytes and
``visible.plan_appearance``), the pages from the verifier's renderer (``visual_diff.render_pages``:
PDFium, with the lock, pixel bound and time budget it already has there).

PDFium rather than poppler's ``pdftoppm``, measured here at 150 dpi, grey, best of 3 (pdftoppm as one
subprocess per document writing PNGs, PDFium rendering only):

    document                        PDFium ms/page   pdftoppm -png ms/page
    fourpages.pdf (text, 4 pages)         1.6              103
    pdfa-multipage.pdf (6 images)        93               949

plus, for PDFium, ~29 ms per page to encode both PNG sizes (~75 ms for the colour stamp page). PDFium
also needs no temporary files and stops mid-page at the deadline; the verifier already depends on it.

Bounded: at most ``MAX_PAGES`` pages per document are rendered (the card says how many more the
file has and offers the file itself), each page at most ``visual_diff.MAX_PIXELS`` pixels, within
``BUDGET_SECONDS`` per document. A document is rendered once and kept in a ``core.cache.Cache``
created by the container (bounded in entries and bytes; a restart or an eviction only means one
more rendering of bytes the database still holds). Rows were not chosen: a request lives at most a
day, its pages are derived data, and a table of images would need a migration and clean-up for no
gain in truth.
"""
from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pikepdf
from PIL import Image, ImageDraw
from pyhanko.pdf_utils.misc import PdfError

from core.cache import Cache
from core.errors import InvalidInput, KysoError
from signing import qpdf
from signing.verify import visual_diff

if TYPE_CHECKING:
    from signing.create.service import SigningService, SignRequest

log = logging.getLogger(__name__)
MAX_PAGES = 30  # a civil-status extract is 1-2 pages; a dossier result rarely passes 10
BUDGET_SECONDS = 15.0  # per document, all pages
DPI = 150  # the large rendering (A4: 1240 x 1754 px, scaled down to MAX_PIXELS); a stroke of 10 pt text is 2 px
SMALL_WIDTH = 720  # the in-page image: sharp on a 412 px phone at 1.75 device pixels per CSS pixel
STAMP_COLOUR = (200, 0, 0)
STAMP_FILL, STAMP_TINT = (255, 60, 60), 0.27


class HiddenContent(InvalidInput):
    """A document holding what the preview cannot show her: optional-content layers (hidden in the rendering
    she approves, shown or printed by another viewer) or document scripts (which change what a viewer shows
    after she signed). Refused when the request is submitted: she could not see what she would sign."""

    code = "pdf_hidden_content"


SCRIPT_ACTIONS = frozenset({"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/ResetForm"})


def _runs_code(action: object) -> bool:
    return isinstance(action, pikepdf.Dictionary) and str(action.get("/S", "")) in SCRIPT_ACTIONS


NO_VIEW = 1 << 5  # annotation flag 6 (ISO 32000-1, 12.5.3): not displayed on screen, yet it may print


def _annotations(page: pikepdf.Page) -> list[object]:
    annots = page.obj.get("/Annots")
    return list(annots) if isinstance(annots, pikepdf.Array) else []


def _not_viewed(annot: object) -> bool:
    if not isinstance(annot, pikepdf.Dictionary):
        return False
    flags = annot.get("/F", 0)
    return isinstance(flags, int | pikepdf.Object) and bool(int(flags) & NO_VIEW)


def check_nothing_hidden(pdf: bytes) -> None:
    """Raise ``HiddenContent`` for a document with optional content (``/OCProperties``), document-level
    scripts (``/Names /JavaScript``, a script ``/OpenAction``, document ``/AA``) or annotations flagged NoView
    (drawn on paper, not on the screen she approves on). A file pikepdf cannot open
    is left to ``SigningService.check_input``, which judges damage."""
    try:
        with qpdf.opened(pdf) as doc:
            root = doc.Root
            layers = "/OCProperties" in root
            names = root.get("/Names")
            scripts = ((isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names) or "/AA" in root
                       or _runs_code(root.get("/OpenAction")))
            unseen = any(_not_viewed(annot) for page in doc.pages for annot in _annotations(page))
    except (pikepdf.PdfError, ValueError, TypeError):
        return
    if unseen:
        raise HiddenContent("the PDF has annotations marked not to be shown on screen (NoView) but printed: the "
                            "specialist's preview cannot show them; flatten or remove them before submitting (tệp "
                            "PDF có chú thích chỉ hiện khi in, chuyên viên không xem được trước khi ký)",
                            hidden="annotations")
    if layers:
        raise HiddenContent("the PDF has optional-content layers, which the specialist's preview does not show "
                            "and another viewer can show or print; flatten them before submitting (tệp PDF có "
                            "lớp nội dung ẩn mà chuyên viên không xem được trước khi ký)", hidden="layers")
    if scripts:
        raise HiddenContent("the PDF carries document scripts, which can change what a viewer shows after it is "
                            "signed; remove them before submitting (tệp PDF chứa mã lệnh có thể thay đổi nội dung "
                            "hiển thị sau khi ký)", hidden="scripts")


@dataclass(frozen=True)
class PageImage:
    small: bytes  # PNG, at most SMALL_WIDTH pixels wide
    large: bytes  # PNG, at DPI (within visual_diff.MAX_PIXELS)
    width: int  # of the small image, for the <img> tag
    height: int


@dataclass(frozen=True)
class DocumentPreview:
    sha256: str  # of the bytes the specialist approves (the request's document as submitted)
    page_count: int
    pages: tuple[PageImage | None, ...]  # the first MAX_PAGES; None: the page could not be rendered
    stamp_page: int | None  # 0-based; None: no visible stamp (or its place could not be worked out)
    problem: str | None = None  # why there is no preview or no stamp box, in the signing code's words

    @property
    def hidden_pages(self) -> int:
        return max(0, self.page_count - len(self.pages))

    @property
    def nbytes(self) -> int:
        return sum(len(p.small) + len(p.large) for p in self.pages if p is not None) + 256


def preview_cache(max_entries: int = 64, max_bytes: int = 64 * 2**20) -> Cache[Hashable, DocumentPreview]:
    return Cache("request_previews", max_entries=max_entries, max_weight=max_bytes,
                 weigh=lambda preview: preview.nbytes)


class Previews:
    """Previews of documents waiting for a specialist, made once per document and kept in ``cache``."""

    def __init__(self, signing: SigningService, cache: Cache[Hashable, DocumentPreview]) -> None:
        self.signing = signing
        self.cache = cache

    def of(self, key: Hashable, request: SignRequest) -> DocumentPreview:
        """The preview of ``request`` under ``key`` (e.g. a signing request's id and position: its bytes never
        change). The caller has checked who may see it. A preview with a page missing (out of time, or PDFium could
        not render it) is not kept: the next look tries again."""
        found: DocumentPreview | None = self.cache.get(key)
        if found is None:
            found = make(self.signing, request)
            if found.page_count and all(page is not None for page in found.pages):
                self.cache.put(key, found)
        return found


def make(signing: SigningService, request: SignRequest) -> DocumentPreview:
    sha256 = hashlib.sha256(request.pdf).hexdigest()
    problem = None
    pdf, stamp_page, box = request.pdf, None, None
    try:
        plan = signing.stamp_preview(request)
        pdf, stamp_page, box = plan.pdf, plan.page, plan.box
    except KysoError as exc:  # shown on the card; approving would meet the same error
        problem = exc.message
    except (PdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # a structure pyHanko opens but cannot lay a stamp on (``sign`` refuses it as UnreadablePdf)
        log.warning("no stamp preview for a pending document: %s: %s", type(exc).__name__, exc)
        problem = f"the PDF is damaged in a way kyso cannot sign through ({type(exc).__name__})"
    rendered = visual_diff.render_pages(pdf, max_pages=MAX_PAGES, budget_seconds=BUDGET_SECONDS, dpi=DPI)
    pages = tuple(None if r is None else _page_image(r, box if index == stamp_page else None)
                  for index, r in enumerate(rendered.pages))
    return DocumentPreview(sha256=sha256, page_count=rendered.page_count, pages=pages,
                           stamp_page=stamp_page if box is not None else None, problem=problem)


def _page_image(rendering: visual_diff.Rendering, stamp: tuple[float, float, float, float] | None) -> PageImage:
    """The page in grey (a third of the bytes to encode and send), the stamp's page in colour with its box."""
    image = rendering.image
    where = rendering.pixel_box(stamp) if stamp is not None else None
    if where is not None:
        image = image.convert("RGB")
        region = image.crop(where)
        image.paste(Image.blend(region, Image.new("RGB", region.size, STAMP_FILL), STAMP_TINT), where[:2])
        line = max(2, image.width // 300)
        ImageDraw.Draw(image).rectangle(where, outline=STAMP_COLOUR, width=line)
    small = image
    if image.width > SMALL_WIDTH:
        small = image.resize((SMALL_WIDTH, max(1, round(image.height * SMALL_WIDTH / image.width))),
                             Image.Resampling.BILINEAR, reducing_gap=2.0)
    return PageImage(small=_png(small), large=_png(image), width=small.width, height=small.height)


def _png(image: Image.Image) -> bytes:
    """Grey pages as they are; the coloured stamp page as a 64-colour palette image (measured on an A4 text
    page at 150 dpi: 29 ms and 3 kB instead of 49 ms and 13 kB as RGB)."""
    if image.mode == "RGB":
        image = image.quantize(colors=64, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


__all__ = ["DocumentPreview", "PageImage", "Previews", "make", "preview_cache"]
