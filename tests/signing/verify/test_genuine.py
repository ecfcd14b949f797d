"""What "genuine" takes (issue 15): nothing but accountable changes after signing, a signature and not
just a timestamp, kyso's own signatures on record, and what was signed handed back on request.

The attack suite (tests/attacks/) crafts every published forgery class; these tests pin the verdict's
own rules one by one on the smallest file that shows each."""
from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers

from api.container import Container
from signing import loop
from signing.create.service import AppearanceOptions
from signing.errors import TooComplex
from signing.registry import lifecycle
from tests.helpers.pdfs import append_page, sign_directly
from tests.helpers.signing import CONSENTED, request


def _timestamp_only(pki: Container, pdf: bytes) -> bytes:
    out = io.BytesIO()
    stamper = signers.PdfTimeStamper(pki.signing.timestamper())
    loop.run(stamper.async_timestamp_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False), "sha256",
                                          output=out))
    return out.getvalue()


def test_a_timestamp_alone_is_not_a_signature(pki: Container, sample_pdf: bytes) -> None:
    stamped = _timestamp_only(pki, sample_pdf)

    report = pki.verifier.verify(stamped)

    [ts] = report.signatures
    assert ts.kind == "document_timestamp" and ts.indication == "TOTAL-PASSED"  # the token itself is sound
    assert report.genuine is False
    assert "NOT signed" in report.summary.en and "KHÔNG được ký" in report.summary.vi


def test_a_timestamp_does_not_bless_a_change_made_before_it(pki: Container, specialist: str,
                                                            sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED).pdf
    laundered = _timestamp_only(pki, append_page(signed))

    report = pki.verifier.verify(laundered)

    assert report.genuine is False
    assert any(m.category == "page" and m.revision == 3 for m in report.modifications), report.modifications
    assert all(s.indication == "TOTAL-PASSED" for s in report.signatures)  # each is sound for what it covers


def test_bytes_behind_a_stale_startxref_are_not_ignored(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """ISA variant: an update whose startxref still points at the signed revision's xref, so a
    reader that follows startxref never sees it, and one that rebuilds the file does."""
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED).pdf
    old_startxref = re.findall(rb"startxref\s+(\d+)", signed)[-1]
    forged = signed + (b"99 0 obj\n<< /Type /Annot /Subtype /FreeText /Rect [50 50 300 100] "
                       b"/Contents (Paid in full) >>\nendobj\nstartxref\n" + old_startxref + b"\n%%EOF\n")

    report = pki.verifier.verify(forged)

    assert report.genuine is False
    [mod] = [m for m in report.modifications if m.category == "trailing_bytes"]
    assert "bytes follow the end of the signed file" in mod.text.en


def test_trailing_whitespace_after_eof_is_harmless(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED).pdf
    report = pki.verifier.verify(signed + b"\r\n\n  \x00")
    assert not [m for m in report.modifications if m.category == "trailing_bytes"]


def test_an_empty_visible_signature_field_painted_over_the_page_is_not_accountable(
        pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """The overlay attack: a new signature field with no signature whose appearance draws new text."""
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED).pdf
    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    fields.append_signature_field(writer, fields.SigFieldSpec("Overlay", on_page=0, box=(60, 600, 400, 700)))
    out = io.BytesIO()
    writer.write(out)

    report = pki.verifier.verify(out.getvalue())

    assert report.genuine is False
    assert any(m.category in ("widget", "annotation") for m in report.modifications), report.modifications


def test_honest_later_signature_and_upgrade_stay_genuine(pki: Container, specialist: str, seal: str,
                                                         sample_pdf: bytes) -> None:
    first = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED).pdf
    sealed = pki.signing.sign(request(first, seal, "B-LTA"), actor="test", activation=CONSENTED).pdf

    report = pki.verifier.verify(sealed)

    assert report.genuine is True, (report.modifications, report.notes)
    assert report.modifications == () and report.registry is not None and report.registry.is_current


def test_padding_changed_in_a_valid_document_is_not_the_issued_file(pki: Container, specialist: str,
                                                                    sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED)
    sig = PdfFileReader(io.BytesIO(signed.pdf)).embedded_regular_signatures[0]
    hole_end = int(sig.byte_range[2]) - 2  # the last hex digit inside /Contents <...>: padding zeros
    assert signed.pdf[hole_end:hole_end + 1] == b"0"
    changed = signed.pdf[:hole_end] + b"1" + signed.pdf[hole_end + 1:]

    report = pki.verifier.verify(changed)

    assert report.registry is not None and report.registry.document_id == signed.document_id
    assert report.genuine is False
    assert any(m.category == "unsigned_bytes" for m in report.modifications)


def test_withdrawn_document_found_by_its_signature(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED)
    lifecycle.withdraw(pki.pki, signed.document_id, "issued in error", "test")
    sig = PdfFileReader(io.BytesIO(signed.pdf)).embedded_regular_signatures[0]
    at = int(sig.byte_range[2]) - 2
    changed = signed.pdf[:at] + b"7" + signed.pdf[at + 1:]

    report = pki.verifier.verify(changed)

    assert report.registry is not None and report.registry.status == "withdrawn"
    assert report.genuine is False


def test_kyso_signature_kyso_never_recorded_is_not_genuine(pki: Container, specialist: str,
                                                           sample_pdf: bytes) -> None:
    """A kyso specialist key used outside kyso's signing service (a stolen key, a rogue client)."""
    material = pki.signing.material.signer(specialist)
    rogue = sign_directly(pki, material, sample_pdf, timestamp=False)

    report = pki.verifier.verify(rogue)

    [s] = report.signatures
    assert s.indication == "TOTAL-PASSED" and s.registered is False
    assert report.genuine is False
    assert any("no record of making it" in n.en for n in report.notes)


def test_signed_revision_is_handed_back(client: TestClient, pki: Container, specialist: str,
                                        sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED).pdf
    extended = append_page(signed)

    answer = client.post("/api/v1/verify/signed-revision", content=extended,
                         headers={"Content-Type": "application/pdf"})

    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.content == signed
    assert pki.verifier.verify(answer.content).genuine is True
    unsigned = client.post("/api/v1/verify/signed-revision", content=sample_pdf,
                           headers={"Content-Type": "application/pdf"})
    assert unsigned.status_code == 422 and unsigned.json()["error"]["code"] == "no_signature"


def test_citizen_page_names_the_change_and_offers_the_signed_version(
        client: TestClient, pki: Container, specialist: str, sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED)
    extended = append_page(signed.pdf)

    page = client.post(f"/v/{signed.document_id}", files={"file": ("giay.pdf", extended, "application/pdf")})

    assert page.status_code == 200
    assert 'data-result="modified"' in page.text and "bị thay đổi sau khi ký" in page.text
    assert "không bị sửa đổi" not in page.text  # never "unaltered"
    assert 'class="box ok"' not in page.text  # one verdict, and it is not green
    back = client.post(f"/v/{signed.document_id}/signed-revision",
                       files={"file": ("giay.pdf", extended, "application/pdf")})
    assert back.status_code == 200 and back.content == signed.pdf


@pytest.mark.parametrize("count", [3])
def test_too_many_signatures_is_a_clear_refusal(pki: Container, sample_pdf: bytes, count: int) -> None:
    pki.settings.verify_max_signatures = count - 1  # lowered, for a small file
    pdf = sample_pdf
    for n in range(count):
        pdf = _timestamp_only(pki, pdf)
    with pytest.raises(TooComplex, match="at most 2"):
        pki.verifier.verify(pdf)


def test_visible_stamps_signed_one_after_another_stay_genuine(pki: Container, specialist: str, seal: str,
                                                              sample_pdf: bytes) -> None:
    """The seal's widget joins the specialist's on page 1: an existing annotation is not a new one."""
    visible = AppearanceOptions()
    first = pki.signing.sign(request(sample_pdf, specialist, "B-T", appearance=visible), actor="test", activation=CONSENTED).pdf
    sealed = pki.signing.sign(request(first, seal, "B-LT", appearance=visible), actor="test", activation=CONSENTED).pdf

    report = pki.verifier.verify(sealed)

    assert report.genuine is True, (report.modifications, report.notes)
