"""Look, like a person would: render what a signature covers and what the file shows now, compare.

EU DSS's PdfModificationDetection in spirit: page count differences, page size or rotation
differences, pixel differences per page (merged into a few boxes), and annotations or widgets added
after a signature whose rectangle covers page content. Nothing here decides a verdict; the verifier
turns these facts into one.

Coordinates. Every box is ``(x0, y0, x1, y1)`` in PDF points in the page's default user space, x to
the right and y up *before* ``/Rotate`` is applied: the space of the page's content stream and of an
annotation's ``/Rect``. For the usual crop box [0 0 w h] the origin is the bottom-left corner of the
crop box; a page whose crop box starts elsewhere, or that is rotated, keeps its own user space, so a
box compares with a widget's ``/Rect`` as is. ``ignore`` boxes are in the same space.

Renderer, chosen by measurement (this machine, grayscale, ms per page, best of 3; pdftoppm 22.12 as a
subprocess, whole document per call, or one process for page 1 alone at 100 dpi):

    document                         pdfium 72 dpi  100 dpi   pdftoppm 72 dpi  100 dpi  (page 1 alone)
    kyso sample, 1 page                   1.5        2.3          7.3          7.8         7.4
    kyso-signed sample (stamp)            1.4        2.1          8.0          9.8        10.2
    50 text pages                         0.4        0.8          1.8          2.9         9.2
    pdfa-multipage (6 image pages)       88         88          275          259          68

PDFium (pypdfium2) is 3-5x cheaper on text pages, needs no process or temporary files, can stop a
page mid-render when the time budget runs out (progressive rendering with a pause callback) and can
render with or without annotations and form widgets. 100 dpi: a comma for a full stop changes
4 pixels at 72 dpi and 10 at 100 dpi, for ~1 ms more per page, and a pixel is 0.72 pt. ``compare`` of
a 1-page kyso document with its stamped successor: 4.3 ms cold, 0.75 ms with both renderings cached.

PDFium is not thread-safe, not even across documents (pypdfium2's documentation): every PDFium call
here runs under ``PDFIUM_LOCK``, which any other user of pypdfium2 in the process must share. The lock
is taken with a timeout inside the time budget, so a queue of hostile files cannot hold an honest
verification for longer than its own budget.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, cast

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageChops, ImageFilter

from core.cache import Cache
from signing.verify.report import Text, VisualDifference

Box = tuple[float, float, float, float]
Mode = Literal["seen", "content"]  # seen: as a viewer shows it; content: the page without annotations or widgets

PDFIUM_LOCK = threading.Lock()

DPI = 100
MAX_PIXELS = 2_000_000  # per page: A4 at 100 dpi is 0.97 million, A3 1.9; a 14400 pt square page is scaled down
TOLERANCE = 32  # grey levels (of 255) a pixel may differ by and still count as the same
MIN_PIXELS = 2  # differing pixels a region needs before it is reported (a comma for a full stop: 10)
CELL = 8  # pixels per grid cell when grouping differences (5.8 pt at 100 dpi)
GAP = 2  # cells between two regions that still merge into one box (doubled while there are many)
MAX_BOXES = 5  # per page
INK = 255 - TOLERANCE  # darker than this is content, for the overlap check



# -- renderings and their cache --------------------------------------------------------------------
@dataclass(frozen=True)
class Rendering:
    """One page as grey pixels, with the map from pixel corners to the page's user space."""

    image: Image.Image  # mode "L"; never modified after rendering
    to_user: tuple[float, float, float, float, float, float]  # x = a*px + b*py + c, y = d*px + e*py + f
    size: tuple[float, float]  # displayed width and height in points (after /Rotate)
    rotation: int  # degrees, from /Rotate

    @property
    def nbytes(self) -> int:
        return self.image.width * self.image.height

    def user_box(self, px: tuple[int, int, int, int]) -> Box:
        a, b, c, d, e, f = self.to_user
        xs, ys = [], []
        for x, y in ((px[0], px[1]), (px[2], px[1]), (px[0], px[3]), (px[2], px[3])):
            xs.append(a * x + b * y + c)
            ys.append(d * x + e * y + f)
        return (round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1))

    def pixel_box(self, box: Box, pad: int = 0) -> tuple[int, int, int, int] | None:
        """The pixels covering ``box`` (user space), grown by ``pad`` pixels, clipped to the image;
        None when nothing of it is on the page."""
        a, b, c, d, e, f = self.to_user
        det = a * e - b * d
        if det == 0:
            return None
        pxs, pys = [], []
        for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
            x, y = x - c, y - f
            pxs.append((e * x - b * y) / det)
            pys.append((a * y - d * x) / det)
        x0 = max(0, math.floor(min(pxs)) - pad)
        y0 = max(0, math.floor(min(pys)) - pad)
        x1 = min(self.image.width, math.ceil(max(pxs)) + pad)
        y1 = min(self.image.height, math.ceil(max(pys)) + pad)
        return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


class RenderCache(Cache[tuple[str, int, int, Mode], "Rendering"]):
    """Renderings keyed by (sha256 of the file, page, dpi, mode), least recently used dropped first,
    bounded in entries and in bytes (``core.cache``). One per verifier (created by its owner and passed
    in); a citizen's upload of a registered genuine file then needs no second render of that version."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 96 * 2**20) -> None:
        super().__init__("visual_renderings", max_entries=max_entries, max_weight=max_bytes,
                         weigh=lambda rendering: rendering.nbytes)

    @property
    def max_bytes(self) -> int:
        assert self.max_weight is not None
        return self.max_weight

    @property
    def nbytes(self) -> int:
        return self.weight


# -- rendering -------------------------------------------------------------------------------------
class _OutOfTime(Exception):
    pass


class _Unreadable(Exception):
    pass


class _Document:
    """A PDF opened in PDFium on first need, pages rendered through the cache. Use only inside
    ``_Renderer``'s lock, and close it there (pypdfium2's finalizers would otherwise close it from
    whichever thread the garbage collector runs in)."""

    def __init__(self, data: bytes, mode: Mode, cache: RenderCache | None) -> None:
        self.data = data
        self.mode = mode
        self.cache = cache
        self._pdf: pdfium.PdfDocument | None = None
        self._failed = False

    def open(self) -> pdfium.PdfDocument:
        if self._failed:
            raise _Unreadable()
        if self._pdf is None:
            try:
                pdf = pdfium.PdfDocument(self.data)
            except pdfium.PdfiumError as exc:
                self._failed = True
                raise _Unreadable() from exc
            self._pdf = pdf  # closed by close(), also when the form environment fails
            if self.mode == "seen":
                try:
                    _init_forms(pdf)
                except (pdfium.PdfiumError, _Unreadable) as exc:
                    self._failed = True
                    raise _Unreadable() from exc
        return self._pdf

    @functools.cached_property
    def sha256(self) -> str:
        """Hashed on first need (the cache key, ``compare``'s same-file test): laying out a stamp renders one
        page uncached, and hashes nothing."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def is_open(self) -> bool:
        return self._pdf is not None

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None


def _init_forms(pdf: pdfium.PdfDocument) -> None:
    """PDFium draws widgets (signature stamps, form fields) only through a form environment, and
    pypdfium2 sets one up only when the catalog has an /AcroForm. Other viewers draw a widget's
    appearance without one, so a widget added with no /AcroForm would be invisible to this check
    alone: the environment is made for every document."""
    if pdf.get_formtype() != pdfium_c.FORMTYPE_NONE:
        pdf.init_forms()
        return
    config = pdfium_c.FPDF_FORMFILLINFO(version=2)
    raw = pdfium_c.FPDFDOC_InitFormFillEnvironment(pdf, config)
    if not raw:
        raise _Unreadable()
    pdf.formenv = pdfium.PdfFormEnv(raw, config)


class _Renderer:
    """Holds ``PDFIUM_LOCK`` while PDFium works; gives it up between pages so that other threads'
    verifications interleave, and never waits past the deadline for it."""

    def __init__(self, deadline: float, dpi: int) -> None:
        self.deadline = deadline
        self.dpi = dpi
        self._held = False

    def __enter__(self) -> _Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _acquire(self) -> None:
        if self._held:
            return
        if not PDFIUM_LOCK.acquire(timeout=max(0.0, self.deadline - time.monotonic())):
            raise _OutOfTime()
        self._held = True

    def release(self) -> None:
        if self._held:
            PDFIUM_LOCK.release()
            self._held = False

    def page_count(self, doc: _Document) -> int:
        self._acquire()
        return len(doc.open())

    def close(self, *docs: _Document) -> None:
        if any(d.is_open for d in docs):
            # closing must happen under the lock even when the deadline has passed
            if not self._held:
                PDFIUM_LOCK.acquire()
                self._held = True
            for d in docs:
                d.close()

    def render(self, doc: _Document, index: int) -> Rendering:
        key = (doc.sha256, index, self.dpi, doc.mode)
        if doc.cache is not None:
            found = doc.cache.get(key)
            if found is not None:
                return found
        if time.monotonic() >= self.deadline:
            raise _OutOfTime()
        self._acquire()
        pdf = doc.open()
        try:
            page = pdf[index]
        except pdfium.PdfiumError as exc:
            raise _Unreadable() from exc
        try:
            rendering = _render_page(page, self.dpi, doc.mode, self.deadline)
        except pdfium.PdfiumError as exc:
            raise _Unreadable() from exc
        finally:
            page.close()
        if doc.cache is not None:
            doc.cache.put(key, rendering)
        return rendering


def _scale(width: float, height: float, dpi: int) -> float:
    scale = dpi / 72
    width, height = max(width, 1.0), max(height, 1.0)
    while math.ceil(width * scale) * math.ceil(height * scale) > MAX_PIXELS:
        scale = min(scale * 0.99, math.sqrt(MAX_PIXELS / (width * height)))
    return scale


def _render_page(page: pdfium.PdfPage, dpi: int, mode: Mode, deadline: float) -> Rendering:
    """Progressive rendering with a pause callback: a page that takes too long is abandoned at the
    deadline instead of holding the lock (and the verification) for as long as it likes."""
    w_pt, h_pt = page.get_size()
    scale = _scale(w_pt, h_pt, dpi)
    width, height = max(1, math.ceil(w_pt * scale)), max(1, math.ceil(h_pt * scale))
    bitmap = pdfium.PdfBitmap.new_native(width, height, format=pdfium_c.FPDFBitmap_Gray)
    try:
        bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
        flags = pdfium_c.FPDF_GRAYSCALE | (pdfium_c.FPDF_ANNOT if mode == "seen" else 0)
        pos = (0, 0, width, height, 0)
        pause = pdfium_c.IFSDK_PAUSE(version=1)
        callback = type(pause.NeedToPauseNow)(lambda _: time.monotonic() > deadline)
        pause.NeedToPauseNow = callback
        status = pdfium_c.FPDF_RenderPageBitmap_Start(bitmap, page, *pos, flags, pause)
        try:
            while status == pdfium_c.FPDF_RENDER_TOBECONTINUED:
                if time.monotonic() > deadline:
                    raise _OutOfTime()
                status = pdfium_c.FPDF_RenderPage_Continue(page, pause)
        finally:
            pdfium_c.FPDF_RenderPage_Close(page)
        if status == pdfium_c.FPDF_RENDER_FAILED:
            raise _Unreadable()
        if mode == "seen" and page.formenv:
            pdfium_c.FPDF_FFLDraw(page.formenv, bitmap, page, *pos, flags)
        image = bitmap.to_pil().copy()
        to_user = _affine(page, pos)
    finally:
        bitmap.close()
    return Rendering(image=image, to_user=to_user, size=(round(w_pt, 2), round(h_pt, 2)),
                     rotation=page.get_rotation())


Affine = tuple[float, float, float, float, float, float]


def _affine(page: pdfium.PdfPage, pos: tuple[int, int, int, int, int]) -> Affine:
    def to_page(x: int, y: int) -> tuple[float, float]:
        px, py = ctypes.c_double(), ctypes.c_double()
        if not pdfium_c.FPDF_DeviceToPage(page, *pos, x, y, px, py):
            raise _Unreadable()
        return px.value, py.value

    width, height = pos[2], pos[3]
    ox, oy = to_page(0, 0)
    ux, uy = to_page(width, 0)
    vx, vy = to_page(0, height)
    return ((ux - ox) / width, (vx - ox) / height, ox, (uy - oy) / width, (vy - oy) / height, oy)


# -- comparing -------------------------------------------------------------------------------------
def compare(signed: bytes, final: bytes, *, ignore: Mapping[int, Sequence[Box]] = {},
            budget_seconds: float = 2.0, cache: RenderCache | None = None,
            dpi: int = DPI) -> tuple[VisualDifference, ...]:
    """Where ``final`` (the whole file) looks different from ``signed`` (the revision a signature
    covers), page by page, as a viewer shows them (annotations and form widgets drawn).

    ``ignore`` maps a 0-based page index to boxes (user space, points) left out of the pixel
    comparison: the rectangles of later accountable signature widgets. Boxes in the result are in
    each page's default user space (see the module docstring). When rendering runs past
    ``budget_seconds``, the pages not compared are named in one ``not_compared`` difference; a file
    PDFium cannot open or a page it cannot render is ``not_compared`` too. Never raises for a
    malformed file.
    """
    deadline = time.monotonic() + budget_seconds
    before, after = _Document(signed, "seen", cache), _Document(final, "seen", cache)
    found: list[VisualDifference] = []
    with _Renderer(deadline, dpi) as renderer:
        try:
            try:
                n_before, n_after = renderer.page_count(before), renderer.page_count(after)
            except _Unreadable:
                return (_not_compared(1, None, unreadable=True),)
            except _OutOfTime:
                return (_not_compared(1, None),)
            if n_before != n_after:
                found.append(_page_count(n_before, n_after))
            same_file = before.sha256 == after.sha256
            common = min(n_before, n_after) if not same_file else 0
            unreadable: list[int] = []
            for index in range(common):
                try:
                    if time.monotonic() >= deadline:  # cached pages too: comparing costs time as well
                        raise _OutOfTime()
                    a, b = renderer.render(before, index), renderer.render(after, index)
                except _OutOfTime:
                    found.append(_not_compared(index + 1, common))
                    break
                except _Unreadable:
                    unreadable.append(index + 1)
                    continue
                renderer.release()  # the comparison itself needs no PDFium
                if a.size != b.size or a.rotation != b.rotation:
                    found.append(_page_size(index + 1, a, b))
                    continue
                found.extend(_pixel_differences(index + 1, a, b, ignore.get(index, ())))
        finally:
            renderer.close(before, after)
    found.extend(_not_compared(first, last, unreadable=True) for first, last in _runs(unreadable))
    return tuple(found)


@dataclass(frozen=True)
class PageRenderings:
    """The pages of one document as a viewer shows them (``render_pages``)."""

    page_count: int  # 0 when PDFium could not open the file, or ran out of time before it counted
    pages: tuple[Rendering | None, ...]  # the first ones; None: not rendered (out of time, or unreadable)


def render_pages(data: bytes, *, max_pages: int, budget_seconds: float, dpi: int = DPI) -> PageRenderings:
    """The first ``max_pages`` pages of ``data`` as a viewer shows them (annotations and form widgets
    drawn), for a person to look at (the specialist's preview of what she signs). Same renderer, lock,
    pixel bound (``MAX_PIXELS`` per page) and time budget as ``compare``; never raises for a malformed file."""
    deadline = time.monotonic() + budget_seconds
    doc = _Document(data, "seen", None)
    pages: list[Rendering | None] = []
    count = 0
    with _Renderer(deadline, dpi) as renderer:
        try:
            count = renderer.page_count(doc)
            for index in range(min(count, max_pages)):
                try:
                    pages.append(renderer.render(doc, index))
                except _Unreadable:
                    pages.append(None)
                renderer.release()  # other threads' renderings interleave between pages
        except (_Unreadable, _OutOfTime):
            pass
        finally:
            renderer.close(doc)
    pages += [None] * (min(count, max_pages) - len(pages))
    return PageRenderings(count, tuple(pages))


def render_chosen(data: bytes, indexes: Sequence[int], *, budget_seconds: float,
                  dpi: int = DPI) -> tuple[int, dict[int, Rendering]]:
    """The page count of ``data`` and the pages ``indexes`` (0-based, in that order, as a viewer shows
    them) rendered within ``budget_seconds``: the pages not reached in time, or PDFium cannot render,
    are missing from the result. For laying out a stamp (``signing/create/visible.py``); never raises
    for a malformed file."""
    deadline = time.monotonic() + budget_seconds
    doc = _Document(data, "seen", None)
    found: dict[int, Rendering] = {}
    count = 0
    with _Renderer(deadline, dpi) as renderer:
        try:
            count = renderer.page_count(doc)
            for index in indexes:
                if 0 <= index < count:
                    with contextlib.suppress(_Unreadable):
                        found[index] = renderer.render(doc, index)
                renderer.release()
        except (_Unreadable, _OutOfTime):
            pass
        finally:
            renderer.close(doc)
    return count, found


def _runs(pages: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7] -> [(1, 3), (7, 7)]: one sentence per run of unreadable pages, not per page."""
    runs: list[tuple[int, int]] = []
    for page in pages:
        if runs and runs[-1][1] == page - 1:
            runs[-1] = (runs[-1][0], page)
        else:
            runs.append((page, page))
    return runs


def _pixel_differences(page: int, a: Rendering, b: Rendering, ignore: Sequence[Box]) -> list[VisualDifference]:
    if a is b:
        return []
    diff = ImageChops.difference(a.image, b.image)
    mask = diff.point(lambda v: 255 if v > TOLERANCE else 0)
    for box in ignore:
        pixels = b.pixel_box(_normal(box), pad=1)  # anti-aliased edges spill one pixel past the rect
        if pixels is not None:
            mask.paste(0, pixels)
    if mask.getbbox() is None:
        return []
    return [VisualDifference(page=page, box=box, kind="pixels", text=_pixels_text(page, box))
            for box in (b.user_box(px) for px in _regions(mask))]


def _regions(mask: Image.Image) -> list[tuple[int, int, int, int]]:
    """Pixel boxes of the differing regions of ``mask`` (255 = differs): connected regions on a
    coarse grid, near ones merged (farther apart each round while there are many), at most
    ``MAX_BOXES``, each tightened to its pixels. The cost stays bounded on a page changed all over."""
    cols, rows = math.ceil(mask.width / CELL), math.ceil(mask.height / CELL)
    padded = Image.new("L", (cols * CELL, rows * CELL), 0)
    padded.paste(mask, (0, 0))
    counts = padded.reduce(CELL)  # mean of each cell: 255 * differing pixels / CELL²
    occupied = counts.point(lambda v: 255 if v else 0)
    boxes: list[tuple[int, int, int, int]] = []
    for gap in (GAP, 2 * GAP, 4 * GAP, 8 * GAP):
        joined = occupied.filter(ImageFilter.MaxFilter(2 * gap + 1))
        boxes = _grouped(mask, counts, joined)
        if len(boxes) <= 3 * MAX_BOXES:
            break
    return _merge(boxes)


class _GreyPixels(Protocol):
    """Pixel access to a mode "L" image: one int per pixel (Pillow types ``PixelAccess`` for every mode)."""

    def __getitem__(self, xy: tuple[int, int], /) -> int: ...


def _grouped(mask: Image.Image, counts: Image.Image, joined: Image.Image) -> list[tuple[int, int, int, int]]:
    grid, near = cast(_GreyPixels, counts.load()), cast(_GreyPixels, joined.load())
    area = joined.getbbox()
    if area is None:
        return []
    seen: set[tuple[int, int]] = set()
    boxes: list[tuple[int, int, int, int]] = []
    for cy in range(area[1], area[3]):
        for cx in range(area[0], area[2]):
            if not near[cx, cy] or (cx, cy) in seen:
                continue
            cells = _component(near, cx, cy, joined.width, joined.height, seen)
            weight = sum(grid[x, y] for x, y in cells) * CELL * CELL / 255
            hits = [(x, y) for x, y in cells if grid[x, y]]
            if not hits or weight < MIN_PIXELS:
                continue
            x0, y0 = min(x for x, _ in hits) * CELL, min(y for _, y in hits) * CELL
            x1 = min(mask.width, (max(x for x, _ in hits) + 1) * CELL)
            y1 = min(mask.height, (max(y for _, y in hits) + 1) * CELL)
            tight = mask.crop((x0, y0, x1, y1)).getbbox()
            if tight is not None:
                boxes.append((x0 + tight[0], y0 + tight[1], x0 + tight[2], y0 + tight[3]))
    return boxes


def _component(near: _GreyPixels, cx: int, cy: int, cols: int, rows: int,
               seen: set[tuple[int, int]]) -> list[tuple[int, int]]:
    stack, cells = [(cx, cy)], []
    seen.add((cx, cy))
    while stack:
        x, y = stack.pop()
        cells.append((x, y))
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if 0 <= nx < cols and 0 <= ny < rows and (nx, ny) not in seen and near[nx, ny]:
                seen.add((nx, ny))
                stack.append((nx, ny))
    return cells


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Merge the two boxes whose union grows least until at most ``MAX_BOXES`` remain."""
    if len(boxes) > 3 * MAX_BOXES:  # a page changed all over: one box says it best
        return [_union(boxes)]
    while len(boxes) > MAX_BOXES:
        best = None
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                u = _union([boxes[i], boxes[j]])
                growth = _area(u) - _area(boxes[i]) - _area(boxes[j])
                if best is None or growth < best[0]:
                    best = (growth, i, j, u)
        assert best is not None
        _, i, j, u = best
        boxes = [b for k, b in enumerate(boxes) if k not in (i, j)] + [u]
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def _union(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _area(b: tuple[int, int, int, int]) -> int:
    return (b[2] - b[0]) * (b[3] - b[1])


def _normal(box: Box) -> Box:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


# -- annotations over content ----------------------------------------------------------------------
def annotation_overlaps(pdf: bytes, annotations: Sequence[tuple[int, Box]], *, against: bytes | None = None,
                        budget_seconds: float = 2.0, cache: RenderCache | None = None,
                        dpi: int = DPI) -> tuple[VisualDifference, ...]:
    """Which of ``annotations`` (0-based page index, ``/Rect`` in user space) — annotations or
    widgets added after a signature — cover what the page showed before them.

    That page is ``against`` (the signed revision) as a viewer shows it, its own signed stamps and
    annotations included, when given and when it has the page; otherwise ``pdf``'s page rendered
    without any annotation or widget. A rectangle over blank paper is not reported (a signature
    stamp in the space left for it); the rectangle's outermost pixel is not looked at, so content
    that merely touches it is not an overlap. Results are ordered by page; when time runs out, one
    ``not_compared`` difference names the pages whose annotations were not checked."""
    deadline = time.monotonic() + budget_seconds
    docs = [_Document(against, "seen", cache)] if against is not None else []
    docs.append(_Document(pdf, "content", cache))
    ordered = sorted(((index, _normal(rect)) for index, rect in annotations), key=lambda item: (item[0], item[1]))
    found: list[VisualDifference] = []
    unreadable: list[int] = []
    pages: dict[int, Rendering | None] = {}
    with _Renderer(deadline, dpi) as renderer:
        try:
            for index, box in ordered:
                if index not in pages:
                    try:
                        if time.monotonic() >= deadline:
                            raise _OutOfTime()
                        pages[index] = _content_of(renderer, docs, index)
                    except _OutOfTime:
                        found.append(_not_compared(index + 1, ordered[-1][0] + 1, annotations=True))
                        break
                    except _Unreadable:
                        pages[index] = None
                        unreadable.append(index + 1)
                    renderer.release()
                rendering = pages[index]
                if rendering is None:
                    continue  # no such page (the page-count check speaks for it), or unreadable
                pixels = rendering.pixel_box(box, pad=-1)
                if pixels is None:
                    continue
                histogram = rendering.image.crop(pixels).histogram()
                if sum(histogram[:INK]) >= MIN_PIXELS:
                    found.append(VisualDifference(page=index + 1, box=_rounded(box), kind="annotation_overlap",
                                                  text=_overlap_text(index + 1, box)))
        finally:
            renderer.close(*docs)
    found.extend(_not_compared(first, last, unreadable=True) for first, last in _runs(unreadable))
    return tuple(found)


def _content_of(renderer: _Renderer, docs: list[_Document], index: int) -> Rendering | None:
    if index < 0:
        return None
    for doc in docs:
        if index < renderer.page_count(doc):
            return renderer.render(doc, index)
    return None


def _rounded(box: Box) -> Box:
    return (round(box[0], 1), round(box[1], 1), round(box[2], 1), round(box[3], 1))


# -- sentences -------------------------------------------------------------------------------------
def _area_text(box: Box) -> str:
    return f"({box[0]:.0f}, {box[1]:.0f})–({box[2]:.0f}, {box[3]:.0f})"


def _pixels_text(page: int, box: Box) -> Text:
    where = _area_text(box)
    return Text(vi=f"Trang {page} khác với bản đã ký ở vùng {where} (điểm PDF).",
                en=f"Page {page} differs from the signed version in the area {where} (PDF points).")


def _overlap_text(page: int, box: Box) -> Text:
    where = _area_text(box)
    return Text(vi=f"Một chú thích hoặc trường biểu mẫu thêm sau khi ký che lên nội dung trang {page} ở vùng {where}.",
                en=f"An annotation or form field added after signing covers the content of page {page} "
                   f"in the area {where}.")


def _page_count(before: int, after: int) -> VisualDifference:
    page = min(before, after) + 1
    if after > before:
        text = Text(vi=f"Tệp có {after} trang, bản đã ký có {before} trang: từ trang {page} là trang thêm vào "
                       f"sau khi ký.",
                    en=f"The file has {after} pages, the signed version {before}: pages from {page} on were added "
                       f"after signing.")
    else:
        text = Text(vi=f"Tệp có {after} trang, bản đã ký có {before} trang: từ trang {page} đã bị bỏ đi sau khi ký.",
                    en=f"The file has {after} pages, the signed version {before}: pages from {page} on were removed "
                       f"after signing.")
    return VisualDifference(page=page, box=None, kind="page_count", text=text)


def _page_size(page: int, a: Rendering, b: Rendering) -> VisualDifference:
    def shape(r: Rendering) -> str:
        return f"{r.size[0]:.0f}×{r.size[1]:.0f} pt, {r.rotation}°"

    return VisualDifference(page=page, box=None, kind="page_size", text=Text(
        vi=f"Trang {page} có kích thước hoặc hướng xoay khác bản đã ký ({shape(b)}; bản đã ký: {shape(a)}).",
        en=f"Page {page} has a different size or rotation from the signed version ({shape(b)}; signed: {shape(a)})."))


def _not_compared(first: int, last: int | None, *, unreadable: bool = False,
                  annotations: bool = False) -> VisualDifference:
    if last is None:
        pages_vi, pages_en = "Các trang", "The pages"
    elif last == first:
        pages_vi, pages_en = f"Trang {first}", f"Page {first}"
    else:
        pages_vi, pages_en = f"Các trang {first}–{last}", f"Pages {first}–{last}"
    if annotations:
        text = Text(vi=f"Chú thích thêm sau khi ký trên {pages_vi.lower()} chưa được kiểm tra có che nội dung hay "
                       f"không: hết thời gian dành cho việc so sánh.",
                    en=f"Annotations added after signing on {pages_en.lower()} were not checked for covering the "
                       f"content: the time for comparing ran out.")
    elif unreadable:
        text = Text(vi=f"{pages_vi} không hiển thị được để so sánh với bản đã ký.",
                    en=f"{pages_en} could not be rendered to compare with the signed version.")
    else:
        verb = "was" if last == first else "were"
        text = Text(vi=f"{pages_vi} chưa được so sánh với bản đã ký: hết thời gian dành cho việc so sánh.",
                    en=f"{pages_en} {verb} not compared with the signed version: the time for comparing ran out.")
    return VisualDifference(page=first, box=None, kind="not_compared", text=text)
