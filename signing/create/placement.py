"""Where an automatic stamp goes: one rendering of one page, and the white place on it.

The page is rendered once, as a viewer shows it (``visual_diff.render_chosen``: PDFium opens the file
lazily and loads and renders only that page, under the shared PDFium lock, at most
``visual_diff.MAX_PIXELS`` pixels, paused and abandoned at ``PLACEMENT_SECONDS``). No other page is
loaded, parsed or rendered, however many the document has. A document with content PDFium does not draw
but another viewer may (``hidden_on_screen``: layers, NoView annotations) is not searched either. PDFium
parses a page's whole content when it loads it, out of the budget's reach, so ``drawable`` first weighs that
content on pyHanko's page object (``MAX_CONTENT_BYTES``). A page too heavy, or not shown in time (or at all),
has no free place, and the caller falls back to its documented rule (a page added at the end).

The search (``free_spot``) runs on a grid of ``CELL``-pixel cells, each row of the grid one Python
integer of occupied-cell bits: a band of rows is OR-ed from a sparse table, and the free runs of the
stamp's width are found with shifts, so an A4 page costs well under a millisecond where the former
cell-by-cell prefix sums cost 6-15 ms.
"""
from __future__ import annotations

import math
import zlib
from typing import Any

from pyhanko.pdf_utils import generic

from signing.verify import visual_diff

Box = tuple[float, float, float, float]
PLACEMENT_DPI = 72  # one pixel per point: a stamp's place needs no finer grid
PLACEMENT_SECONDS = 3.0  # rendering budget for the one page a stamp's place is looked for on
CELL = 4  # pixels per cell of the free-space grid
WHITE = 250  # a rendered grey level darker than this is content (text, image, line, fill)
MARGIN = 36.0
SMALL_MARGIN = 8.0  # when no place keeps the usual margin
SEAL_RESERVE = (50.0, 28.0)  # room left of and below a person stamp for the agency seal that may follow
MAX_CONTENT_BYTES = 4 * 2**20  # decoded page content PDFium is asked to parse: ~500,000 operators, ~0.4 s
MAX_CONTENT_OBJECTS = 2000  # content streams, forms and annotations looked at on one page
HIDDEN, NO_VIEW = 1 << 1, 1 << 5  # annotation flags 2 and 6 (ISO 32000-1, 12.5.3)
_INK = bytes(255 if v < WHITE else 0 for v in range(256))


def drawable(page: Any, resources: Any = None) -> bool:
    """Whether PDFium may be asked to render ``page`` (pyHanko's page dictionary, already parsed for the
    signature; ``resources``: those it inherits): its content — the content streams, the form XObjects they
    draw (nested, up to ``MAX_CONTENT_OBJECTS`` streams) and the appearances of its annotations — decodes to at most
    ``MAX_CONTENT_BYTES``. PDFium parses a page's content in one go when it loads the page (~0.8 µs an
    operator, beyond the time budget's reach, holding the lock every verification shares); a page with more
    is a page without room. Flate streams are inflated only up to what is left of the allowance."""
    left = MAX_CONTENT_BYTES
    seen: set[Any] = set()
    todo: list[tuple[Any, int]] = [(page, 0)]
    if resources is not None and "/Resources" not in page:  # inherited from the page tree
        todo.append((resources, 1))
    while todo:
        node, depth = todo.pop()
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, generic.StreamObject):
            left -= _decoded_size(node, left)
            if left < 0 or len(seen) > MAX_CONTENT_OBJECTS:
                return False
        if depth >= 6 or not isinstance(node, generic.DictionaryObject):
            continue
        for key in ("/Contents", "/Resources", "/XObject", "/Annots", "/AP", "/N"):
            child = node.raw_get(key) if key in node else None
            if child is None:
                continue
            ref = getattr(child, "reference", None)
            if ref is not None:
                if ref in seen:
                    continue
                seen.add(ref)
            value = child.get_object()
            if key in ("/Contents", "/Annots") and isinstance(value, generic.ArrayObject):
                todo.extend((value.raw_get(i), depth + 1) for i in range(min(len(value), MAX_CONTENT_OBJECTS)))
            elif key in ("/XObject", "/N") and isinstance(value, generic.DictionaryObject) \
                    and not isinstance(value, generic.StreamObject):
                todo.extend((value.raw_get(name), depth + 1) for name in list(value)[:MAX_CONTENT_OBJECTS])
            elif not (key == "/XObject" and isinstance(value, generic.StreamObject)):
                todo.append((child, depth + 1))
        if len(todo) > MAX_CONTENT_OBJECTS:
            return False
    return True


def hidden_on_screen(root: Any, page: Any) -> bool:
    """Whether the document holds content PDFium's rendering leaves out but another viewer may show: optional
    content (``/OCProperties``: a layer off by default, or one a viewer's layer panel or printing turns on)
    or an annotation on ``page`` flagged NoView and not Hidden (printed, not drawn on screen). White paper in
    such a rendering may not be white elsewhere, so it is not searched for a place (no free place)."""
    if "/OCProperties" in root:
        return True
    annots = page.get("/Annots")
    annots = annots.get_object() if annots is not None else None
    if not isinstance(annots, generic.ArrayObject):
        return False
    for i in range(min(len(annots), MAX_CONTENT_OBJECTS)):
        annot = annots[i]
        if not isinstance(annot, generic.DictionaryObject):
            continue
        flags = annot.get("/F", 0)
        flags = int(flags) if isinstance(flags, int | float) else 0
        if flags & NO_VIEW and not flags & HIDDEN:
            return True
    return False


def _decoded_size(stream: generic.StreamObject, allowance: int) -> int:
    """The decoded length of ``stream``, or more than ``allowance`` when it is larger (inflated no further)."""
    if stream.get("/Subtype") == "/Image":
        return 0  # an image is decoded as it is drawn, within the rendering's time budget
    raw = stream.encoded_data
    filters = stream.get("/Filter")
    names = [filters] if isinstance(filters, generic.NameObject) else list(filters or [])
    if not names:
        return len(raw)
    if names == ["/FlateDecode"] or names == ["/Fl"]:
        try:
            return len(zlib.decompressobj().decompress(raw, max(allowance, 0) + 1))
        except zlib.error:
            return len(raw)
    if len(raw) * 64 > allowance:  # other filters (LZW, run-length, ASCII85…): not decoded here
        return allowance + 1
    try:
        return len(stream.data)
    except Exception:  # noqa: BLE001 - an undecodable stream draws nothing
        return len(raw)


def render_page(pdf: bytes, index: int) -> visual_diff.Rendering | None:
    """Page ``index`` (0-based) of ``pdf`` as a viewer shows it, or None when PDFium cannot show it within
    ``PLACEMENT_SECONDS``; only that page is loaded."""
    _, renderings = visual_diff.render_chosen(pdf, [index], budget_seconds=PLACEMENT_SECONDS, dpi=PLACEMENT_DPI)
    return renderings.get(index)


def free_spot(rendering: visual_diff.Rendering, width: float, height: float, *, top: bool = False,
              seal_room: bool = True) -> Box | None:
    """The place (user space) nearest the bottom right (``top``: the top right) of the page as it is seen
    where a ``width`` × ``height`` stamp covers no rendered content — text, images and vector graphics
    alike — keeping a cell of white around it; first with room for a seal beside it (``seal_room``, never
    with ``top``) and the usual margin, then without; None when the page has no such place."""
    image = rendering.image
    per_point = image.width / max(rendering.size[0], 1.0)
    # whole cells only: a partial last cell would let a scaled-down page (a few points per pixel) lose most
    # of a cell of its margin
    whole = image.crop((0, 0, image.width // CELL * CELL, image.height // CELL * CELL))
    ink = whole.point(_INK).reduce(CELL).point(lambda v: 255 if v else 0, mode="1")
    grid_w, grid_h = ink.size
    stride = (grid_w + 7) // 8
    packed = ink.tobytes()
    bits = stride * 8
    # one integer per grid row (top to bottom, as in the image); column c is bit ``bits - 1 - c``
    rows = [int.from_bytes(packed[r * stride:(r + 1) * stride], "big") for r in range(grid_h)]

    def cells(points: float) -> int:
        return math.ceil(points * per_point / CELL)

    passes = [((0.0, 0.0), MARGIN), ((0.0, 0.0), SMALL_MARGIN)]
    table: dict[int, list[int]] = {1: rows}  # span -> OR of rows r .. r + span - 1, for spans that are powers of 2
    for reserve, margin in ([(SEAL_RESERVE, MARGIN)] if seal_room and not top else []) + passes:
        span_w = cells(width + reserve[0]) + 2  # one white cell on each side
        span_h = cells(height + reserve[1]) + 2
        edge = max(0, cells(margin) - 1)
        if span_h > grid_h - 2 * edge or span_w > grid_w - 2 * edge:
            continue
        allowed = ((1 << (grid_w - 2 * edge)) - 1) << (bits - grid_w + edge)  # columns edge .. grid_w - edge - 1
        power = 1
        while power * 2 <= span_h:
            if power * 2 not in table:
                half = table[power]
                table[power * 2] = [half[r] | half[r + power] for r in range(len(half) - power)]
            power *= 2
        band = table[power]
        last = grid_h - edge - span_h  # the top row of the lowest band
        order = range(edge, last + 1) if top else range(last, edge - 1, -1)
        for row in order:
            free = ~(band[row] | band[row + span_h - power]) & allowed
            run = 1  # ``free``: bit q set when columns of bits q .. q + run - 1 are all free
            while run * 2 <= span_w and free:
                free &= free >> run
                run *= 2
            if free and run < span_w:
                free &= free >> (span_w - run)
            if free:
                low = (free & -free).bit_length() - 1  # the rightmost run: its columns are bits low .. low + span_w - 1
                col = bits - 1 - (low + span_w - 1)
                x0 = (col + span_w - 1) * CELL - width * per_point  # the stamp: top right of the span
                y0 = (row + 1) * CELL  # (the seal's room is left of and below it)
                return rendering.user_box((x0, y0, x0 + width * per_point, y0 + height * per_point))  # type: ignore[arg-type]
    return None
