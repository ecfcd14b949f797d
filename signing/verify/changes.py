"""What changed after each signature, and whether every change is accounted for.

A signed PDF can grow by incremental updates. kyso calls a file genuine only if everything added
after a signature is one of three accountable kinds (issue 15): a DSS update (validation data), a
document timestamp, or a further signature in its own field with its own appearance. Everything
else — a new or changed annotation or widget, a form value, an /F flag that unhides a widget, an
appearance stream overwritten in place, a page added or replaced, a content stream, bytes after the
last revision's ``%%EOF`` — is reported, naming the object and the page, whatever the DocMDP
permission would tolerate. This is the defence against the incremental-saving, shadow
(hide / replace / hide-and-replace) and overlay attacks of the PDF-Insecurity research.

pyHanko's whitelisting difference analysis does the object-by-object work: every object written
in a revision must be explained by a rule, or the revision is suspicious. kyso runs it with a
stricter rule set than pyHanko's default (no generic form-field rule: only signature fields may be
created or filled; no annotation rule) and reviews each revision once against the one before it,
so a file with n signatures costs n reviews, not n² (pyHanko reviews from every signature to the
end). What pyHanko explains is then checked again with kyso's own facts: a signature field created
or changed in a revision must be a signature made in that revision, and a visible widget must
belong to one.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.sign.diff_analysis import (
    CatalogModificationRule,
    DocInfoRule,
    DSSCompareRule,
    FormUpdatingRule,
    MetadataUpdateRule,
    ModificationLevel,
    ObjectStreamRule,
    SigFieldCreationRule,
    SigFieldModificationRule,
    StandardDiffPolicy,
    SuspiciousModification,
    XrefStreamRule,
)
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from signing.errors import TooComplex
from signing.verify.limits import Budget
from signing.verify.pdf_facts import covered_end
from signing.verify.report import Modification, Text
from signing.verify.report_text import one_line, plain_message

Box = tuple[float, float, float, float]

# Only what signing and LTV maintenance write: no generic form filling, no annotations.
STRICT_POLICY = StandardDiffPolicy(
    global_rules=[
        CatalogModificationRule(),
        DocInfoRule().as_qualified(ModificationLevel.LTA_UPDATES),
        XrefStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
        ObjectStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
        DSSCompareRule().as_qualified(ModificationLevel.LTA_UPDATES),
        MetadataUpdateRule().as_qualified(ModificationLevel.LTA_UPDATES),
    ],
    form_rule=FormUpdatingRule(field_rules=[
        # a later visible signature after a certification (P=2) is what Acrobat allows; the visual
        # comparison and the later signature's own validation guard it
        SigFieldCreationRule(allow_new_visible_after_certify=True),
        SigFieldModificationRule(allow_in_place_appearance_stream_changes=False),
    ]),
)
MAX_PAGES_WALKED = 10_000
ANNOTATION_WORDS = {"/FreeText": "chú thích văn bản (FreeText)", "/Stamp": "con dấu chú thích (Stamp)",
                    "/Link": "liên kết (Link)", "/Square": "hình vuông (Square)", "/Text": "ghi chú (Text)"}
_EOF = re.compile(rb"%%EOF")
_BLANK = b"\r\n\t \x00\x0c"  # what may stand between revisions without being content


@dataclass(frozen=True)
class RevisionReview:
    """One incremental update after the first signature, judged."""

    revision: int  # pyHanko's 0-based revision number
    signatures: frozenset[str]  # fields of the signatures and timestamps made in this revision
    level: ModificationLevel | None  # pyHanko's level for what it could explain; None: suspicious
    problems: tuple[Modification, ...]


@dataclass(frozen=True)
class ChangeReview:
    """Every revision after the first signature, and bytes after the last one."""

    revisions: tuple[RevisionReview, ...] = ()
    trailing: tuple[Modification, ...] = ()
    widgets: tuple[tuple[str, int, Box], ...] = ()  # (signature field, page index, box) of later signatures' widgets

    def after(self, revision: int) -> tuple[Modification, ...]:
        """Unaccountable changes made after the signature signed in ``revision``."""
        found = [m for r in self.revisions if r.revision > revision for m in r.problems]
        return (*found, *self.trailing)

    def level_after(self, revision: int) -> ModificationLevel:
        later = [r for r in self.revisions if r.revision > revision]
        if any(r.problems for r in later) or self.trailing:
            return ModificationLevel.OTHER
        return max((r.level or ModificationLevel.OTHER for r in later), default=ModificationLevel.NONE)

    @property
    def widget_boxes(self) -> dict[int, list[Box]]:
        """Page index → the later signatures' widget boxes (areas the visual comparison leaves out)."""
        boxes: dict[int, list[Box]] = {}
        for _name, page, box in self.widgets:
            boxes.setdefault(page, []).append(box)
        return boxes

    @property
    def modifications(self) -> tuple[Modification, ...]:
        return (*(m for r in self.revisions for m in r.problems), *self.trailing)


def review(reader: PdfFileReader, pdf: bytes, signatures: list[EmbeddedPdfSignature], *,
           budget: Budget | None = None, own: frozenset[int] = frozenset()) -> ChangeReview:
    """Review every revision after the earliest signature (nothing to do without one).

    ``own``: the signatures and timestamps (``id()`` of the objects in ``signatures``) kyso's service
    recorded making — by identity, since a crafted file may give another signature the same field name. A
    revision that ends exactly where such a signature's byte range ends was written by kyso as a whole (the
    signature's digest covers it, and kyso only appends its signature, stamp and validation data), so it needs no
    object-by-object review; the visual comparison still looks at it."""
    if not signatures:
        return ChangeReview()
    total = reader.xrefs.total_revisions
    by_revision: dict[int, list[EmbeddedPdfSignature]] = {}
    for sig in signatures:
        by_revision.setdefault(sig.signed_revision, []).append(sig)
    first = min(by_revision)
    certified = _strictest_docmdp(signatures)
    reviews: list[RevisionReview] = []
    widgets: list[tuple[str, int, Box]] = []
    final = reader.get_historical_resolver(total - 1)
    final_pages: list[generic.Reference] | None = None  # walked once, when a later signature has a widget
    for revision in range(first + 1, total):
        if budget is not None and budget.spent():
            raise TooComplex("checking every change in this PDF takes longer than kyso allows for one file")
        made = by_revision.get(revision, [])
        docmdp = certified(revision)
        before = [s for s in signatures if s.signed_revision < revision]
        if any(id(s) in own and _ends_revision(reader, pdf, s) for s in made) and docmdp is None:
            regular = any(s.sig_object_type != "/DocTimeStamp" for s in made)
            one = RevisionReview(revision, frozenset(str(s.field_name) for s in made),
                                 ModificationLevel.FORM_FILLING if regular else ModificationLevel.LTA_UPDATES, ())
        else:
            one = _review_revision(reader, revision, made, docmdp, _after_name(before))
        reviews.append(one)
        if not one.problems:
            for sig in made:
                box = _widget_box(sig)
                if box is None:
                    continue
                final_pages = _pages(final) if final_pages is None else final_pages
                page = _widget_page(final, final_pages, sig.sig_field)
                if page is not None:
                    widgets.append((str(sig.field_name), page, box))
    trailing = (*_gaps(reader, pdf, first, total, signatures), *_trailing_bytes(reader, pdf, total - 1,
                                                                               _after_name(signatures)))
    return ChangeReview(tuple(reviews), tuple(trailing), tuple(widgets))


def _revision_end(reader: PdfFileReader, pdf: bytes, revision: int) -> int | None:
    """The offset just after the ``%%EOF`` that closes ``revision`` (None if the reader cannot say)."""
    try:
        info = reader.xrefs.get_xref_container_info(revision)
    except Exception:  # noqa: BLE001 - an xref pyHanko could not map is judged by the revision review
        return None
    eof = _EOF.search(pdf, max(info.end_location, info.start_location))
    return eof.end() if eof is not None else None


def _ends_revision(reader: PdfFileReader, pdf: bytes, sig: EmbeddedPdfSignature) -> bool:
    """Whether the signature's byte range ends with its own revision's ``%%EOF`` (it covers all of it)."""
    end, covered = _revision_end(reader, pdf, sig.signed_revision), covered_end(sig)
    return end is not None and end <= covered and not pdf[end:covered].strip(_BLANK)


def _strictest_docmdp(signatures: list[EmbeddedPdfSignature]) -> Callable[[int], MDPPerm | None]:
    """For a revision, the DocMDP permission of the certification signed before it (if any)."""
    certs = [(s.signed_revision, level) for s in signatures if (level := _docmdp(s)) is not None]

    def at(revision: int) -> MDPPerm | None:
        levels = [level for signed, level in certs if signed < revision]
        return min(levels, key=lambda p: p.value) if levels else None
    return at


def _docmdp(sig: EmbeddedPdfSignature) -> MDPPerm | None:
    try:
        return sig.docmdp_level
    except Exception:  # noqa: BLE001 - an unreadable permission is treated as none here; coverage judges it
        return None


def _review_revision(reader: PdfFileReader, revision: int, made: list[EmbeddedPdfSignature],
                     docmdp: MDPPerm | None, after: str) -> RevisionReview:
    names = frozenset(str(s.field_name) for s in made)
    old = reader.get_historical_resolver(revision - 1)
    new = reader.get_historical_resolver(revision)
    try:
        result = STRICT_POLICY.apply(old, new, doc_mdp=docmdp)
    except SuspiciousModification as exc:
        return RevisionReview(revision, names, None, _explain(old, new, revision, after, str(exc)))
    except Exception:  # noqa: BLE001 - a structure the analysis cannot read is not accountable
        return RevisionReview(revision, names, None, (_generic(revision, after, ""),))
    problems: list[Modification] = []
    for name in sorted(result.changed_form_fields - names):
        problems.append(Modification(
            revision=revision + 1, after_signature=after, category="widget", object=None,
            page=_field_page(new, name),
            text=Text(f"Trường chữ ký «{one_line(name, 80)}» được tạo hoặc sửa sau khi ký mà không có chữ ký nào.",
                      f"Signature field «{one_line(name, 80)}» was created or changed after signing "
                      "without a signature.")))
    level = result.modification_level
    if docmdp == MDPPerm.NO_CHANGES and level > ModificationLevel.LTA_UPDATES:
        problems.append(Modification(
            revision=revision + 1, after_signature=after, category="certification", object=None, page=None,
            text=Text("Văn bản đã được chứng thực không cho phép thay đổi, nhưng sau đó vẫn được ký thêm.",
                      "The document's certification allows no changes, yet it was signed again later.")))
    if not problems:
        problems.extend(_new_visible_annotations(old, new, revision, after, names))
    return RevisionReview(revision, names, level, tuple(problems))


def _after_name(signatures: list[EmbeddedPdfSignature]) -> str:
    """The field of the latest signature before a change (the one the change follows)."""
    last = max(signatures, key=lambda s: s.signed_revision)
    return str(last.field_name)


# -- naming what changed ---------------------------------------------------------------------------
def _explain(old: HistoricalResolver, new: HistoricalResolver, revision: int, after: str,
             message: str) -> tuple[Modification, ...]:
    """Each object the revision wrote that is visible on a page, by category; the analysis's own
    message when none is (e.g. a freed object)."""
    pages = _pages(new)
    uses = _page_uses(new, pages)
    page_numbers = {(p.idnum, p.generation): index + 1 for index, p in enumerate(pages)}
    found: list[Modification] = []
    refs = sorted(new.explicit_refs_in_revision(), key=lambda r: r.idnum)
    for ref in refs[:200]:
        mod = _classify(old, new, ref, revision, after, page_numbers, uses)
        if mod is not None:
            found.append(mod)
    return tuple(found[:50]) or (_generic(revision, after, message),)


def _generic(revision: int, after: str, message: str) -> Modification:
    """The analysis's own (English, technical) message goes only into the English sentence, without
    programming words (``plain_message``); the Vietnamese sentence says what it means."""
    short = one_line(plain_message(message.splitlines()[0]) if message else "", 160)
    return Modification(revision=revision + 1, after_signature=after, category="object", object=None, page=None,
                        text=Text(f"Lần cập nhật thứ {revision + 1} thay đổi tệp theo cách không được phép sau khi "
                                  "ký.",
                                  f"Update {revision + 1} changes the file in a way not allowed after signing"
                                  + (f" ({short})." if short else ".")))


def _classify(old: HistoricalResolver, new: HistoricalResolver, ref: generic.Reference, revision: int, after: str,
              page_numbers: dict[tuple[int, int], int], uses: dict[tuple[int, int], tuple[str, int]]
              ) -> Modification | None:
    try:
        obj = new(ref)
    except Exception:  # noqa: BLE001
        return None
    existed = old.reader.xrefs.get_historical_ref(ref, old.revision) is not None
    try:
        before = old(ref) if existed else None
    except Exception:  # noqa: BLE001
        before = None
    key = (ref.idnum, ref.generation)
    name = f"{ref.idnum} {ref.generation} R"
    use = uses.get(key)
    page = use[1] + 1 if use else None
    if isinstance(obj, generic.StreamObject):
        kind = obj.get("/Type")
        if kind in ("/XRef", "/ObjStm", "/Metadata") or use is None:
            return None
        category = "content" if use[0] == "content" else "appearance"
        return _mod(revision, after, category, name, page, existed)
    if not isinstance(obj, generic.DictionaryObject):
        return None
    kind, subtype = obj.get("/Type"), obj.get("/Subtype")
    if key in page_numbers:
        return _mod(revision, after, "page", name, page_numbers[key], existed)
    if kind == "/Page":
        return _mod(revision, after, "page", name, page, existed)
    if kind == "/Pages":
        return _mod(revision, after, "page", name, None, existed)
    if subtype == "/Widget" or "/FT" in obj:
        if obj.get("/FT") == "/Sig" and not existed:
            return None  # a new signature field: judged by the field checks
        category = "widget"
        if isinstance(before, generic.DictionaryObject):
            if before.get("/F") != obj.get("/F"):
                category = "visibility"
            elif before.get("/V") != obj.get("/V"):
                category = "form_value"
            elif before.get("/AP") != obj.get("/AP"):
                category = "appearance"
        return _mod(revision, after, category, name, page, existed)
    if kind == "/Annot" or (subtype is not None and str(subtype) in ANNOTATION_WORDS) or "/Rect" in obj:
        return _mod(revision, after, "annotation", name, page, existed, str(subtype or ""))
    return None


def _mod(revision: int, after: str, category: str, name: str, page: int | None, existed: bool,
         detail: str = "") -> Modification:
    where_vi = f" trên trang {page}" if page and category != "page" else ""
    where_en = f" on page {page}" if page and category != "page" else ""
    verb_vi, verb_en = ("bị sửa", "changed") if existed else ("được thêm", "added")
    what_vi, what_en = {
        "content": ("Nội dung hiển thị", "Page content"),
        "appearance": ("Hình hiển thị của một trường hoặc chú thích", "The appearance of a field or annotation"),
        "page": (f"Trang {page}" if page else "Cây trang", f"Page {page}" if page else "The page tree"),
        "widget": ("Một ô biểu mẫu", "A form widget"),
        "visibility": ("Cờ ẩn/hiện của một ô biểu mẫu", "The hidden/visible flag of a form widget"),
        "form_value": ("Giá trị của một ô biểu mẫu", "The value of a form field"),
        "annotation": (f"Một chú thích {ANNOTATION_WORDS.get(detail) or one_line(detail.lstrip('/'), 40)}".rstrip(),
                       f"An annotation {one_line(detail.lstrip('/'), 40)}".rstrip()),
    }[category]
    return Modification(revision=revision + 1, after_signature=after, category=category, object=name, page=page,
                        text=Text(f"{what_vi}{where_vi} {verb_vi} sau khi ký (đối tượng {name}).",
                                  f"{what_en}{where_en} was {verb_en} after signing (object {name})."))


def _new_visible_annotations(old: HistoricalResolver, new: HistoricalResolver, revision: int, after: str,
                             signed: frozenset[str]) -> Iterator[Modification]:
    """A visible annotation newly attached to a page must be the widget of a signature made here."""
    written = {(r.idnum, r.generation) for r in new.explicit_refs_in_revision()}
    old_pages = _pages(old)
    new_pages = _pages(new)
    for index, page_ref in enumerate(new_pages):
        if not _touched(new, page_ref, written):
            continue  # neither the page nor its /Annots array was written: no annotation was attached
        before = {_key(r) for r in _annot_refs(old, old_pages[index])} if index < len(old_pages) else set()
        for ref in _annot_refs(new, page_ref):
            if _key(ref) in before:
                continue
            annot = ref.get_object() if isinstance(ref, generic.IndirectObject) else None
            if not isinstance(annot, generic.DictionaryObject) or not _visible(annot):
                continue
            if annot.get("/FT") == "/Sig" and str(annot.get("/T")) in signed:
                continue
            parent = annot.get("/Parent")
            if isinstance(parent, generic.DictionaryObject) and str(parent.get("/T")) in signed:
                continue
            yield _mod(revision, after, "annotation", f"{ref.idnum} {ref.generation} R", index + 1, False,
                       str(annot.get("/Subtype") or ""))


def _key(value: Any) -> tuple[int, int] | int:
    """An annotation's identity across revisions (references of two revisions never compare equal)."""
    return (value.idnum, value.generation) if isinstance(value, generic.IndirectObject) else id(value)


def _touched(resolver: HistoricalResolver, page_ref: generic.Reference, written: set[tuple[int, int]]) -> bool:
    if (page_ref.idnum, page_ref.generation) in written:
        return True
    try:
        annots = resolver(page_ref).raw_get("/Annots")
    except Exception:  # noqa: BLE001 - no /Annots
        return False
    return isinstance(annots, generic.IndirectObject) and (annots.idnum, annots.generation) in written


def _field_page(resolver: HistoricalResolver, name: str) -> int | None:
    """The 1-based page showing a field's widget (by the field's /T, or its parent's)."""
    for index, page_ref in enumerate(_pages(resolver)):
        for ref in _annot_refs(resolver, page_ref):
            try:
                annot = ref.get_object()
            except Exception:  # noqa: BLE001
                continue
            if not isinstance(annot, generic.DictionaryObject):
                continue
            parent = annot.get("/Parent")
            titles = {str(annot.get("/T"))}
            if isinstance(parent, generic.DictionaryObject):
                titles.add(str(parent.get("/T")))
            if name in titles or name.rsplit(".", 1)[-1] in titles:
                return index + 1
    return None


def _visible(annot: generic.DictionaryObject) -> bool:
    try:
        flags = int(annot.get("/F", 0))
        x0, y0, x1, y1 = (float(v) for v in annot["/Rect"])
    except Exception:  # noqa: BLE001 - a malformed rectangle: assume it shows
        return True
    return not flags & 0b10 and abs(x1 - x0) > 0 and abs(y1 - y0) > 0


def _annot_refs(resolver: HistoricalResolver, page_ref: generic.Reference) -> list[Any]:
    try:
        annots = resolver(page_ref).get("/Annots")
        annots = annots.get_object() if isinstance(annots, generic.IndirectObject) else annots
        return list(annots or ())
    except Exception:  # noqa: BLE001
        return []


def _pages(resolver: HistoricalResolver) -> list[generic.Reference]:
    """The page references of a revision, in order (bounded: a hostile tree cannot loop)."""
    out: list[generic.Reference] = []
    seen: set[tuple[int, int]] = set()
    try:
        start = resolver.root.raw_get("/Pages")
    except Exception:  # noqa: BLE001
        return out
    stack = [start]
    while stack and len(out) < MAX_PAGES_WALKED:
        ref = stack.pop()
        if not isinstance(ref, generic.IndirectObject):
            continue
        key = (ref.idnum, ref.generation)
        if key in seen:
            continue
        seen.add(key)
        try:
            node = ref.get_object()
        except Exception:  # noqa: BLE001
            continue
        if not isinstance(node, generic.DictionaryObject):
            continue
        kids = node.get("/Kids") if node.get("/Type") != "/Page" else None
        if kids is None:
            out.append(ref.reference)
        else:
            try:
                stack.extend(reversed(list(node.raw_get("/Kids").get_object() if isinstance(
                    node.raw_get("/Kids"), generic.IndirectObject) else node.raw_get("/Kids"))))
            except Exception:  # noqa: BLE001
                continue
    return out


def _page_uses(resolver: HistoricalResolver, pages: list[generic.Reference]) -> dict[tuple[int, int], tuple[str, int]]:
    """Which page each content stream, annotation and appearance stream is drawn on."""
    uses: dict[tuple[int, int], tuple[str, int]] = {}

    def note(value: Any, kind: str, index: int, depth: int = 0) -> None:
        if isinstance(value, generic.IndirectObject):
            uses.setdefault((value.idnum, value.generation), (kind, index))
            try:
                value = value.get_object()
            except Exception:  # noqa: BLE001
                return
        if depth < 3 and isinstance(value, (generic.ArrayObject, generic.DictionaryObject)) and not isinstance(
                value, generic.StreamObject):
            items = value.values() if isinstance(value, generic.DictionaryObject) else value
            for item in list(items)[:64]:
                note(item, kind, index, depth + 1)

    for index, page_ref in enumerate(pages):
        try:
            page = resolver(page_ref)
        except Exception:  # noqa: BLE001
            continue
        if not isinstance(page, generic.DictionaryObject):
            continue
        if "/Contents" in page:
            note(page.raw_get("/Contents"), "content", index)
        resources = page.get("/Resources")
        if isinstance(resources, generic.DictionaryObject) and "/XObject" in resources:
            note(resources.raw_get("/XObject"), "content", index)
        for annot in _annot_refs(resolver, page_ref):
            note(annot, "annotation", index, depth=3)
            try:
                ap = annot.get_object().get("/AP") if isinstance(annot, generic.IndirectObject) else None
            except Exception:  # noqa: BLE001
                ap = None
            if ap is not None:
                note(ap, "appearance", index, depth=1)
    return uses


def _widget_box(sig: EmbeddedPdfSignature) -> Box | None:
    """A signature's visible widget rectangle (areas the visual check leaves out), or None if invisible."""
    try:
        rect = [float(v) for v in sig.sig_field["/Rect"]]
    except Exception:  # noqa: BLE001
        return None
    box = (min(rect[0], rect[2]), min(rect[1], rect[3]), max(rect[0], rect[2]), max(rect[1], rect[3]))
    return box if box[2] > box[0] and box[3] > box[1] else None


def _widget_page(resolver: HistoricalResolver, pages: list[generic.Reference],
                 widget: generic.DictionaryObject) -> int | None:
    """The 0-based page a widget sits on: its /P, or the page whose /Annots lists it."""
    page_ref = widget.raw_get("/P") if "/P" in widget else None
    wanted = _key(page_ref) if isinstance(page_ref, generic.IndirectObject) else None
    for index, ref in enumerate(pages):
        if wanted == (ref.idnum, ref.generation):
            return index
        if any(isinstance(a, generic.IndirectObject) and a.get_object() is widget for a in _annot_refs(resolver, ref)):
            return index
    return None


# -- bytes outside every revision ------------------------------------------------------------------
def _gaps(reader: PdfFileReader, pdf: bytes, first: int, total: int,
          signatures: list[EmbeddedPdfSignature]) -> Iterator[Modification]:
    """Bytes between the ``%%EOF`` of one revision and the first object of the next, after the first
    signature: objects written there belong to no cross-reference section (ISA's "no xref" update,
    then covered by a later timestamp or signature to look accounted for). A reader that rebuilds
    the file may show them; no revision's analysis ever sees them."""
    for revision in range(first + 1, total):
        end = _revision_end(reader, pdf, revision - 1)
        try:
            section = reader.xrefs._xref_sections[revision]  # noqa: SLF001 - object offsets of one revision
            offsets = [offset for _gen, offset in section.xref_data.standard_xrefs.values()]
            start = min([*offsets, section.meta_info.start_location])
        except Exception:  # noqa: BLE001 - an xref pyHanko could not map is judged by the revision review
            continue
        if end is None or end >= start:
            continue
        gap = pdf[end:start].strip(_BLANK)
        if gap:
            after = _after_name([s for s in signatures if s.signed_revision < revision])
            yield Modification(
                revision=revision + 1, after_signature=after, category="trailing_bytes", object=None, page=None,
                text=Text(f"Giữa hai lần cập nhật có {len(gap):,} byte không thuộc lần cập nhật nào (trình xem PDF có "
                          "thể hiển thị chúng).",
                          f"{len(gap):,} bytes between two updates belong to no update (a PDF viewer may show "
                          "them)."))



def _trailing_bytes(reader: PdfFileReader, pdf: bytes, last: int, after: str) -> tuple[Modification, ...]:
    """Anything but whitespace after the ``%%EOF`` that ends the last revision the reader followed:
    objects appended with no cross-reference section, or behind a stale ``startxref`` (a viewer that
    reconstructs the file may show them; the signature analysis never sees them)."""
    end = _revision_end(reader, pdf, last)
    count = len(pdf[end:].strip(_BLANK)) if end is not None else 0
    if not count:
        return ()
    return (Modification(
        revision=0, after_signature=after, category="trailing_bytes", object=None, page=None,
        text=Text(f"Sau phần cuối của tệp đã ký có thêm {count:,} byte không thuộc lần cập nhật hợp lệ nào "
                  f"(trình xem PDF có thể hiển thị chúng).",
                  f"{count:,} bytes follow the end of the signed file outside any valid update (a PDF viewer may "
                  f"show them).")),)


__all__ = ["STRICT_POLICY", "ChangeReview", "RevisionReview", "review"]
