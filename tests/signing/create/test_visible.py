"""Visible signatures, checked with tools nobody here wrote: pdftoppm + zbarimg read the QR code,
pdftotext reads the Vietnamese stamp text, pdffonts sees the embedded font, qpdf checks the file."""
from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields

from api.container import Container
from core.db import transaction
from signing.create import offline_seal
from signing.create.service import AppearanceOptions, SignRequest
from signing.create.visible import PERSON_SIZE, QR_COLUMN, QR_GAP
from signing.errors import BadAppearance, SigningRefused
from signing.registry import lifecycle
from tests.helpers.qr import scan
from tests.helpers.signing import COMMUNE, CONSENTED, issue_credential, root_pem
from tests.helpers.validation import validate_all

ASSETS = Path(__file__).resolve().parents[3] / "signing" / "create" / "assets"
NAME = "Nguyễn Thị Hồng Nhung"


def run(*args: str | Path, data: bytes | None = None) -> str:
    result = subprocess.run([str(a) for a in args], input=data, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


def sign(pki: Container, pdf: bytes, credential: str, document_type: str = "dossier-result", **appearance: object):
    return pki.signing.sign(SignRequest(pdf=pdf, document_type=document_type, commune_code=COMMUNE,
                                        credential_id=credential, level="B-T",
                                        appearance=AppearanceOptions(**appearance)), actor="test", activation=CONSENTED)  # type: ignore[arg-type]


def page_text(pdf: bytes, tmp_path: Path, page: int) -> str:
    (tmp_path / "doc.pdf").write_bytes(pdf)
    return run("pdftotext", "-f", str(page), "-l", str(page), "-layout", tmp_path / "doc.pdf", "-")


def qr_codes(pdf: bytes, tmp_path: Path, page: int) -> list[str]:
    (tmp_path / "doc.pdf").write_bytes(pdf)
    run("pdftoppm", "-r", "150", "-png", "-f", str(page), "-l", str(page), "-singlefile", tmp_path / "doc.pdf",
        tmp_path / "page")
    return scan(tmp_path / "page.png")


def seal_url(pki: Container, document_id: str) -> str:
    """What the QR code carries: the citizen page's URL, then the offline seal after '#' (checked here)."""
    with transaction(pki.sessions) as session:
        token = lifecycle.get_document(session, document_id).offline_seal
    assert token and offline_seal.verify(token, document_id, offline_seal.public_keys(pki.pki)).ok
    return f"{pki.settings.base_url}/v/{document_id}#{token}"


def widget_rects(pdf: bytes) -> dict[str, tuple[float, float, float, float]]:
    reader = PdfFileReader(io.BytesIO(pdf))
    rects = {}
    for name, _, ref in fields.enumerate_sig_fields(reader, filled_status=None):
        x1, y1, x2, y2 = (float(v) for v in ref.get_object()["/Rect"])
        rects[name] = (x1, y1, x2, y2)
    return rects


@pytest.fixture
def person(pki: Container) -> str:
    credential = issue_credential(pki, name=NAME)
    lifecycle.enroll_image(pki.pki, credential, "signature", (ASSETS / "sample-signature.png").read_bytes(), "test")
    return credential


@pytest.fixture
def agency_seal(pki: Container) -> str:
    credential = issue_credential(pki, "seal", name="Ủy ban nhân dân phường Ba Đình")
    lifecycle.enroll_image(pki.pki, credential, "seal", (ASSETS / "sample-seal.png").read_bytes(), "test")
    return credential


def test_person_stamp_qr_text_and_font(pki: Container, person: str, sample_pdf: bytes, tmp_path: Path) -> None:
    result = sign(pki, sample_pdf, person)
    pages = int(re.search(r"Pages:\s+(\d+)", run("pdfinfo", "-", data=result.pdf)).group(1))  # type: ignore[union-attr]
    assert qr_codes(result.pdf, tmp_path, pages) == [seal_url(pki, result.document_id)]
    text = page_text(result.pdf, tmp_path, pages)
    assert NAME in text and "CÔNG CHỨC TƯ PHÁP - HỘ TỊCH" in text
    fonts = run("pdffonts", "-l", str(pages), tmp_path / "doc.pdf")
    assert re.search(r"LiberationSerif-Bold\s+CID TrueType\s+Identity-H\s+yes\s+yes", fonts), fonts
    assert "No syntax or stream encoding errors" in run("qpdf", "--check", tmp_path / "doc.pdf")
    [verdict] = validate_all(result.pdf, root_pem(pki), ltv=False)
    assert verdict.bottom_line
    x1, y1, x2, y2 = widget_rects(result.pdf)["Signature1"]
    assert x2 > 400 and y1 < 150, "automatic placement: last page, bottom right"
    assert (round(x2 - x1), round(y2 - y1)) == PERSON_SIZE


def test_no_qr_where_the_ministry_prints_its_own(pki: Container, person: str, sample_pdf: bytes,
                                                 tmp_path: Path) -> None:
    result = sign(pki, sample_pdf, person, document_type="civil-status-extract-birth")
    assert qr_codes(result.pdf, tmp_path, 4) == []
    assert NAME in page_text(result.pdf, tmp_path, 4)


def test_seal_overlaps_left_third_and_keeps_qr_readable(pki: Container, person: str, agency_seal: str,
                                                        sample_pdf: bytes, tmp_path: Path) -> None:
    first = sign(pki, sample_pdf, person)
    second = sign(pki, first.pdf, agency_seal)
    rects = widget_rects(second.pdf)
    px1, py1, px2, py2 = rects["Signature1"]
    sx1, sy1, sx2, sy2 = rects["Signature2"]
    assert abs((sx2 - sx1) - 36 * 72 / 25.4) < 2, "the seal is shown at its real size (36 mm at 300 dpi)"
    overlap = min(sx2, px2) - max(sx1, px1)
    signature_width = (px2 - px1) - (QR_COLUMN + QR_GAP)  # the person stamp less its QR column
    assert 0.28 * signature_width <= overlap <= 0.4 * signature_width, "about a third of the signature"
    assert sx1 < px1, "from the left side"
    assert qr_codes(second.pdf, tmp_path, 4) == [seal_url(pki, first.document_id)]
    assert all(v.intact and v.valid for v in validate_all(second.pdf, root_pem(pki), ltv=False))


def test_copy_block_top_right_of_page_one(pki: Container, person: str, sample_pdf: bytes, tmp_path: Path) -> None:
    result = sign(pki, sample_pdf, person, document_type="certified-copy", copy_form="SAO Y")
    text = page_text(result.pdf, tmp_path, 1)
    assert "SAO Y" in text and "Ủy ban nhân dân Phường Ba Đình" in text
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", text), text
    x1, y1, x2, y2 = widget_rects(result.pdf)["Signature1"]
    reader = PdfFileReader(io.BytesIO(result.pdf))
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    box = page.get("/MediaBox") or reader.root["/Pages"]["/MediaBox"]
    width, height = (float(v) for v in list(box)[2:])
    assert x2 > width * 0.7 and y2 > height * 0.85, "top right of page 1"
    assert qr_codes(result.pdf, tmp_path, 1) == [seal_url(pki, result.document_id)]


def test_page_box_field_and_invisible(pki: Container, person: str, sample_pdf: bytes) -> None:
    boxed = sign(pki, sample_pdf, person, page=1, box=(50, 50, 340, 200))
    assert widget_rects(boxed.pdf)["Signature1"] == (50, 50, 340, 200)
    writer = IncrementalPdfFileWriter(io.BytesIO(sample_pdf))
    fields.append_signature_field(writer, fields.SigFieldSpec("ChuKyCanBo", on_page=0, box=(280, 60, 570, 210)))
    out = io.BytesIO()
    writer.write(out)
    in_field = sign(pki, out.getvalue(), person, field_name="ChuKyCanBo")
    assert widget_rects(in_field.pdf) == {"ChuKyCanBo": (280, 60, 570, 210)}
    hidden = sign(pki, sample_pdf, person, visible=False)
    x1, y1, x2, y2 = widget_rects(hidden.pdf)["Signature1"]
    assert x1 == x2 and y1 == y2, "an invisible signature has an empty rectangle"


@pytest.mark.parametrize("appearance,words", [
    ({"page": 9}, "page 9 does not exist"),
    ({"page": 0}, "page 0 does not exist"),
    ({"page": 1, "box": (0, 0, 5, 5)}, "at least 10"),
    ({"page": 1, "box": (50, 50, 280, 170)}, "32 mm QR code needs at least 221 × 139 points"),
    ({"page": 1, "box": (500, 700, 900, 900)}, "outside page 1"),
])
def test_bad_placements(pki: Container, person: str, sample_pdf: bytes, appearance: dict, words: str) -> None:
    with pytest.raises(BadAppearance, match=words):
        sign(pki, sample_pdf, person, **appearance)


def test_signed_field_cannot_be_signed_again(pki: Container, person: str, agency_seal: str,
                                             sample_pdf: bytes) -> None:
    first = sign(pki, sample_pdf, person)
    with pytest.raises(BadAppearance, match="already signed"):
        sign(pki, first.pdf, agency_seal, field_name="Signature1")
    with pytest.raises(SigningRefused, match="Art. 32"):
        sign(pki, sample_pdf, agency_seal)


def test_automatic_placement_avoids_text(pki: Container, person: str, tmp_path: Path) -> None:
    """Text near the bottom of the page: the stamp moves up the right margin instead of covering it."""
    from signing.create.sample import LINES, sample_document

    pdf = sample_document(pki.settings.stamp_font, LINES, top=190)  # text from y≈40 to y≈200, x 72…≈430
    result = sign(pki, pdf, person)
    x1, y1, x2, y2 = widget_rects(result.pdf)["Signature1"]
    (tmp_path / "doc.pdf").write_bytes(pdf)
    words = run("pdftotext", "-bbox", tmp_path / "doc.pdf", "-")
    for m in re.finditer(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)"', words):
        wx1, wy1, wx2, wy2 = (float(v) for v in m.groups())
        top, bottom = 842 - wy1, 842 - wy2  # pdftotext measures from the top of the page
        assert not (x1 < wx2 and wx1 < x2 and y1 < top and bottom < y2), ("stamp covers a word", m.group(0))
    assert x2 > 400, "still on the right"
