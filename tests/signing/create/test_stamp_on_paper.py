"""The stamp on paper (issue 18), judged by tools kyso did not write: pdftoppm renders the page at
150 dpi, zbarimg reads the QR code from that picture, pdftotext reads the printed code, the caption and
the seal's text. Over the corpus and generated pages (rotated, narrow, tiny, full of text, one image,
vector drawings), the stamp's box covers no pixel of the original page that is not white, or the stamp
is on a page added at the end and the result says so."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from api.container import Container
from core.db import transaction
from signing.create import offline_seal
from signing.create.offline_seal import SealFacts
from signing.create.service import AppearanceOptions, SignRequest, SignResult
from signing.create.visible import VIETNAM, _qr_code, group_code, lookup_caption
from signing.errors import BadAppearance
from signing.registry import lifecycle
from tests.helpers.qr import scan
from tests.helpers.signing import COMMUNE, CONSENTED, CORPUS, issue_credential

ASSETS = Path(__file__).resolve().parents[3] / "signing" / "create" / "assets"
NAME = "Nguyễn Thị Hồng Nhung"
AGENCY = "Ủy ban nhân dân phường Ba Đình"
DPI = 150
SEAL = {"dossier_no": "000.00.04.H26-261206-0001", "applicant": "Trần Thị Bình"}
# the corpus files kyso signs (the others are refused, see tests/signing/create/test_intake.py)
SIGNABLE = ["content-stream-errors.pdf", "cyclic-toc.pdf", "form.pdf", "formxobject.pdf", "fourpages.pdf",
            "jbig2.pdf", "outlines.pdf", "pdfa-acroform.pdf", "pdfa-fpdf2_cjk.pdf", "pdfa-multipage.pdf",
            "pike-jp2.pdf"]


def tool(name: str) -> str:
    """The tools are part of the proof: missing, the test fails (never skips)."""
    found = shutil.which(name)
    assert found, f"{name} is not installed (poppler-utils, zbar-tools): the stamp proof needs it"
    return found


def run(*args: str | Path) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


@pytest.fixture
def person(pki: Container) -> str:
    credential = issue_credential(pki, name=NAME)
    lifecycle.enroll_image(pki.pki, credential, "signature", (ASSETS / "sample-signature.png").read_bytes(), "test")
    return credential


@pytest.fixture
def agency_seal(pki: Container) -> str:
    credential = issue_credential(pki, "seal", name=AGENCY)
    lifecycle.enroll_image(pki.pki, credential, "seal", (ASSETS / "sample-seal.png").read_bytes(), "test")
    return credential


def sign(pki: Container, pdf: bytes, credential: str, *, seal: dict[str, str] | None = None,
         **appearance: object) -> SignResult:
    return pki.signing.sign(SignRequest(pdf=pdf, document_type="dossier-result", commune_code=COMMUNE,
                                        credential_id=credential, level="B-B", seal_fields=seal or {},
                                        appearance=AppearanceOptions(**appearance)),  # type: ignore[arg-type]
                            actor="test", activation=CONSENTED)


# -- generated pages ---------------------------------------------------------------------------------
def _page_pdf(width: float, height: float, stream: bytes, *, rotate: int = 0, image: bool = False,
              crop: tuple[float, float, float, float] | None = None) -> bytes:
    pdf = pikepdf.new()
    resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)))
    if image:
        picture = Image.effect_noise((200, 280), 60).convert("L")
        xobject = pikepdf.Stream(pdf, picture.tobytes())
        xobject.Type, xobject.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        xobject.Width, xobject.Height = picture.width, picture.height
        xobject.ColorSpace, xobject.BitsPerComponent = pikepdf.Name.DeviceGray, 8
        resources.XObject = pikepdf.Dictionary(Im1=xobject)
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, width, height], Resources=resources,
                              Contents=pdf.make_stream(stream))
    if rotate:
        page.Rotate = rotate
    if crop:
        page.CropBox = list(crop)
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _text_lines(x: float, top: float, bottom: float, step: float = 14, words: int = 12) -> bytes:
    lines = []
    y = top
    while y > bottom:
        lines.append(b"BT /F1 11 Tf %g %g Td (%s) Tj ET" % (x, y, b" ".join([b"Noi dung van ban"] * (words // 3))))
        y -= step
    return b"\n".join(lines)


def generated() -> dict[str, bytes]:
    a4 = (595.0, 842.0)
    return {
        "top-half-text": _page_pdf(*a4, _text_lines(60, 790, 430)),
        "full-text": _page_pdf(*a4, _text_lines(20, 830, 5, step=9, words=24)),
        "image-only": _page_pdf(*a4, b"q 595 0 0 842 0 0 cm /Im1 Do Q", image=True),
        "image-top": _page_pdf(*a4, b"q 500 0 0 480 48 330 cm /Im1 Do Q", image=True),
        # vector graphics only: a table of lines and a filled box over the bottom right, no text at all
        "vector": _page_pdf(*a4, b"0 0 1 rg 330 40 230 200 re f 1 w " + b" ".join(
            b"40 %d m 555 %d l S" % (y, y) for y in range(300, 800, 25))),
        "rotated-90": _page_pdf(*a4, _text_lines(60, 560, 300), rotate=90),
        "rotated-180": _page_pdf(*a4, _text_lines(60, 790, 430), rotate=180),
        "rotated-270": _page_pdf(*a4, _text_lines(60, 560, 300), rotate=270),
        "cropped": _page_pdf(700, 1000, b"0 g 0 0 700 60 re f 0 0 60 1000 re f " + _text_lines(120, 900, 500),
                             crop=(60, 60, 655, 902)),
        "narrow": _page_pdf(200, 600, _text_lines(10, 580, 400, words=3)),
        "tiny": _page_pdf(100, 100, b"BT /F1 8 Tf 5 50 Td (Tiny) Tj ET"),
    }


CASES = {**{f"corpus:{name}": name for name in SIGNABLE}, **{f"gen:{name}": name for name in generated()}}


# pages with no blank place the stamp's size: the stamp goes on a page added at the end (form.pdf is a
# 1-inch square page, pdfa-acroform.pdf a 400 × 72 pt strip, jbig2.pdf a page-filling scan, pike-jp2.pdf a
# 90 × 33 pt picture, pdfa-multipage.pdf ends with a page-filling picture: only the last page is looked at)
NO_ROOM = {"gen:full-text", "gen:image-only", "gen:narrow", "gen:tiny", "corpus:form.pdf",
           "corpus:pdfa-acroform.pdf", "corpus:jbig2.pdf", "corpus:pike-jp2.pdf", "corpus:pdfa-multipage.pdf"}


def _input(case: str) -> bytes:
    kind, name = case.split(":", 1)
    return (CORPUS / name).read_bytes() if kind == "corpus" else generated()[name]


# -- reading the output with other people's tools ----------------------------------------------------------
def _widget(pdf: bytes, name: str) -> tuple[int, tuple[float, float, float, float]]:
    """The 0-based page and the rectangle of the widget of signature field ``name``."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for index, page in enumerate(doc.pages):
            for annot in page.obj.get("/Annots", []):
                field = annot if "/T" in annot else annot.get("/Parent", annot)
                if str(field.get("/T", "")) == name:
                    x1, y1, x2, y2 = (float(v) for v in annot.Rect)
                    return index, (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    raise AssertionError(f"no widget for {name}")


def _render(pdf: bytes, page: int, tmp_path: Path, stem: str) -> Path:
    (tmp_path / f"{stem}.pdf").write_bytes(pdf)
    run(tool("pdftoppm"), "-r", str(DPI), "-gray", "-png", "-f", str(page + 1), "-l", str(page + 1), "-singlefile",
        tmp_path / f"{stem}.pdf", tmp_path / stem)
    return tmp_path / f"{stem}.png"


def _seen_pixels(pdf: bytes, page: int, box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """``box`` (user space) in pixels of the page as pdftoppm shows it: crop box, then /Rotate clockwise."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        obj = doc.pages[page]
        media = [float(v) for v in obj.obj.get("/MediaBox", obj.mediabox)]
        crop = [float(v) for v in obj.obj.get("/CropBox", media)]
        rotate = int(obj.obj.get("/Rotate", 0)) % 360
    cx1, cy1, cx2, cy2 = max(media[0], crop[0]), max(media[1], crop[1]), min(media[2], crop[2]), min(media[3], crop[3])
    scale = DPI / 72
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[3])):
        u, v = x - cx1, cy2 - y  # from the top left of the unturned crop box, y down
        w, h = cx2 - cx1, cy2 - cy1
        u, v = {0: (u, v), 90: (h - v, u), 180: (w - u, h - v), 270: (v, w - u)}[rotate]
        xs.append(u * scale)
        ys.append(v * scale)
    return int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1


def _text(pdf: bytes, page: int, tmp_path: Path) -> str:
    (tmp_path / "out.pdf").write_bytes(pdf)
    return run(tool("pdftotext"), "-f", str(page + 1), "-l", str(page + 1), tmp_path / "out.pdf", "-")


def _words(pdf: bytes, page: int, tmp_path: Path) -> list[tuple[str, float, float, float, float]]:
    (tmp_path / "out.pdf").write_bytes(pdf)
    html = run(tool("pdftotext"), "-bbox", "-f", str(page + 1), "-l", str(page + 1), tmp_path / "out.pdf", "-")
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [(m.group(5), *(float(v) for v in m.groups()[:4])) for m in re.finditer(pattern, html)]  # type: ignore[misc]


def _qr(pdf: bytes, page: int, tmp_path: Path) -> list[str]:
    return scan(_render(pdf, page, tmp_path, "signed"))


def _seal_url(pki: Container, document_id: str) -> str:
    with transaction(pki.sessions) as session:
        token = lifecycle.get_document(session, document_id).offline_seal
    return f"{pki.settings.base_url}/v/{document_id}#{token}"


def _page_count(pdf: bytes) -> int:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return len(doc.pages)


# -- the proof -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_stamp_covers_nothing_and_reads_back(pki: Container, person: str, case: str, tmp_path: Path) -> None:
    original = _input(case)
    source = pki.signing.check_input(original).pdf  # what kyso signs: the input, or its repaired copy
    result = sign(pki, original, person, seal=SEAL)
    page, box = _widget(result.pdf, "Signature1")
    pages_before, pages_after = _page_count(source), _page_count(result.pdf)
    assert result.stamp_on_new_page == (case in NO_ROOM), case
    if result.stamp_on_new_page:
        assert pages_after == pages_before + 1 and page == pages_before, "the stamp is on the page added at the end"
    else:
        assert pages_after == pages_before
        grey = Image.open(_render(source, page, tmp_path, "original")).convert("L")
        area = grey.crop(_seen_pixels(source, page, box))
        darkest = area.getextrema()[0]
        assert darkest == 255, f"{case}: the stamp's box {box} on page {page + 1} covers content (grey {darkest})"
    # the QR code reads from a 150 dpi picture, and says where to check this document
    codes = _qr(result.pdf, page, tmp_path)
    assert codes == [_seal_url(pki, result.document_id)], (case, codes)
    [scanned] = codes
    # a compact KS2 seal (issue 19): QR version ≤ 10, and what the phone reads decodes to the facts signed
    assert _qr_code(scanned).version <= 10, (case, _qr_code(scanned).version)
    sealed = offline_seal.parse(scanned)
    assert scanned.partition("#")[2].startswith("KS2:")
    assert sealed.facts == SealFacts(result.document_id, "dossier-result", COMMUNE,
                                     result.signed_at.astimezone(VIETNAM).date(), tuple(SEAL.items()))
    assert offline_seal.verify(scanned, result.document_id, offline_seal.public_keys(pki.pki)).ok
    text = _text(result.pdf, page, tmp_path)
    code = group_code(result.document_id)
    assert re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}", code) and code in text, (code, text)
    assert lookup_caption(pki.settings.base_url) in " ".join(text.split()), text
    # upright as the page is seen: the printed code's words run left to right, wider than tall
    [word] = [w for w in _words(result.pdf, page, tmp_path) if w[0] == code]
    assert word[3] - word[1] > 3 * (word[4] - word[2]), word
    assert NAME in text


def test_new_page_is_said_in_the_api(pki: Container, person: str) -> None:
    """The result says when the stamp went onto an added page; the JSON answer carries it too."""
    from api.schemas_signing import SignedOut

    full = sign(pki, generated()["full-text"], person)
    assert full.stamp_on_new_page
    assert SignedOut.of(full, pki.settings.base_url, with_pdf=False).stamp_on_new_page is True
    roomy = sign(pki, generated()["top-half-text"], person)
    assert not roomy.stamp_on_new_page and _page_count(roomy.pdf) == 1


def test_a_forced_box_too_small_is_refused(pki: Container, person: str) -> None:
    with pytest.raises(BadAppearance, match="32 mm QR code needs at least"):
        sign(pki, generated()["top-half-text"], person, page=1, box=(300, 40, 560, 140))
    with pytest.raises(BadAppearance, match="32 mm QR code needs at least"):
        sign(pki, generated()["tiny"], person, page=1, box=(0, 0, 100, 100))


@pytest.mark.parametrize("name", ["top-half-text", "rotated-90", "rotated-270"])
def test_seal_shows_organisation_and_time_and_spares_the_title(pki: Container, person: str, agency_seal: str,
                                                               name: str, tmp_path: Path) -> None:
    first = sign(pki, generated()[name], person)
    second = sign(pki, first.pdf, agency_seal)
    page, seal_box = _widget(second.pdf, "Signature2")
    text = " ".join(_text(second.pdf, page, tmp_path).split())
    assert AGENCY.lower() in text.lower(), text
    [when] = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", text)
    assert when[:10] == second.signed_at.astimezone(VIETNAM).date().isoformat()
    # the title (pdftotext measures as the page is seen, from its top left) is clear of the seal
    sx1, sy1, sx2, sy2 = (v * 72 / DPI for v in _seen_pixels(second.pdf, page, seal_box))
    title = [w for w in _words(second.pdf, page, tmp_path) if "CÔNG CHỨC" in w[0]]
    assert title, "the title is printed"
    for word, x1, top, x2, bottom in title:
        assert x2 > x1 + 3 * (bottom - top), ("the title reads left to right", word)
        assert not (x1 < sx2 and sx1 < x2 and top < sy2 and sy1 < bottom), ("the seal covers the title", word)
    assert _qr(second.pdf, page, tmp_path) == [_seal_url(pki, first.document_id)]


def _claim_pdfa(pdf: bytes, part: str) -> bytes:
    """The file as a PDF/A producer would mark it: pdfaid:part and conformance B in its XMP metadata."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        with doc.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["pdfaid:part"] = part
            meta["pdfaid:conformance"] = "B"
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()


def _transparency(pdf: bytes) -> tuple[int, int, bytes]:
    """Soft masks and transparency groups, stencil-masked images, and the XMP metadata of ``pdf``."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        objects = [obj for obj in doc.objects if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream))]
        soft = [obj for obj in objects if "/SMask" in obj
                or ("/Group" in obj and obj.Group.get("/S") == "/Transparency")]
        stencilled = [obj for obj in objects if "/Mask" in obj]
        return len(soft), len(stencilled), bytes(doc.Root.Metadata.read_bytes())


PDFA_PART = re.compile(rb"pdfaid:part(?:\s*=\s*[\"']|[^<>]*>)\s*(\d)")


@pytest.mark.parametrize("name", ["fourpages.pdf", "pdfa-multipage.pdf", "pdfa-fpdf2_cjk.pdf"])
def test_pdfa1_gains_no_transparency(pki: Container, person: str, agency_seal: str, name: str) -> None:
    """The handwritten signature and the red seal are PNGs with transparency: in a PDF/A-1 file they keep
    their shape with a 1-bit stencil (/Mask), never a soft mask (/SMask, forbidden by ISO 19005-1 6.4)."""
    original = _claim_pdfa((CORPUS / name).read_bytes(), "1")
    sealed = sign(pki, sign(pki, original, person).pdf, agency_seal)
    soft, stencilled, metadata = _transparency(sealed.pdf)
    assert soft == _transparency(original)[0], "kyso adds no transparency to a PDF/A-1 file"
    assert stencilled >= 2, "the signature image and the seal are stencil-masked"
    found = PDFA_PART.search(metadata)
    assert found and found.group(1) == b"1", "the PDF/A identification is kept"


def test_soft_masks_outside_pdfa1(pki: Container, person: str) -> None:
    """Other files (and PDF/A-2, which allows transparency) keep the images' smooth edges."""
    for pdf in ((CORPUS / "fourpages.pdf").read_bytes(), _claim_pdfa((CORPUS / "fourpages.pdf").read_bytes(), "2")):
        assert _transparency(sign(pki, pdf, person).pdf)[0] >= 1


@pytest.mark.parametrize("name", ["top-half-text", "rotated-90", "cropped", "full-text"])
def test_preview_shows_the_place_signing_uses(pki: Container, person: str, name: str) -> None:
    """The specialist's /me preview draws the box from the same plan: same page, same rectangle, and the
    added page when there is no room (its PDF then has that page too)."""
    pdf = generated()[name]
    wanted = SignRequest(pdf=pdf, document_type="dossier-result", commune_code=COMMUNE, credential_id=person,
                         level="B-B")
    preview = pki.signing.stamp_preview(wanted)
    result = pki.signing.sign(wanted, actor="test", activation=CONSENTED)
    page, box = _widget(result.pdf, "Signature1")
    assert (preview.page, preview.box, preview.new_page) == (page, box, result.stamp_on_new_page)
    assert _page_count(preview.pdf) == _page_count(result.pdf)


@pytest.mark.parametrize("name", ["top-half-text", "rotated-180"])
def test_copy_block_finds_white_space_on_page_one(pki: Container, person: str, name: str, tmp_path: Path) -> None:
    """A SAO Y block goes top right of page 1 where that is blank, else the nearest blank place below it."""
    pdf = generated()[name]
    result = pki.signing.sign(SignRequest(pdf=pdf, document_type="certified-copy", commune_code=COMMUNE,
                                          credential_id=person, level="B-B",
                                          appearance=AppearanceOptions(copy_form="SAO Y")),
                              actor="test", activation=CONSENTED)
    page, box = _widget(result.pdf, "Signature1")
    assert page == 0 and not result.stamp_on_new_page
    grey = Image.open(_render(pdf, 0, tmp_path, "original")).convert("L")
    assert grey.crop(_seen_pixels(pdf, 0, box)).getextrema()[0] == 255, "the block covers no content"
    assert _qr(result.pdf, 0, tmp_path) == [_seal_url(pki, result.document_id)]
    text = _text(result.pdf, 0, tmp_path)
    assert "SAO Y" in text and group_code(result.document_id) in text


def _joined(*pdfs: bytes) -> bytes:
    joined = pikepdf.new()
    for data in pdfs:
        with pikepdf.open(io.BytesIO(data)) as part:
            joined.pages.extend(part.pages)
    out = io.BytesIO()
    joined.save(out)
    return out.getvalue()


def test_a_full_last_page_gets_a_new_page_not_an_earlier_one(pki: Container, person: str, tmp_path: Path) -> None:
    """Only the last page is looked at (one rendering): its being full sends the stamp to a page added at
    the end, even when an earlier page has room (the signature stays after everything it signs)."""
    pages = generated()
    pdf = _joined(pages["top-half-text"], pages["full-text"])
    result = sign(pki, pdf, person)
    page, box = _widget(result.pdf, "Signature1")
    assert page == 2 and result.stamp_on_new_page and _page_count(result.pdf) == 3
    assert _qr(result.pdf, 2, tmp_path) == [_seal_url(pki, result.document_id)]
