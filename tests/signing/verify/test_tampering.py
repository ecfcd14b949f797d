"""Changes after signing: a byte in the signed range, a page appended, an allowed later signature (issue 5, cases 2-3)."""
from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from api.container import Container
from tests.helpers.pdfs import append_page, flip_content_byte, page_count
from tests.helpers.signing import CONSENTED, request, root_pem
from tests.helpers.validation import _root, validate_all


@pytest.mark.parametrize("level", ["B-B", "B-LT"])
def test_one_byte_changed_in_page_content(pki: Container, specialist: str, sample_pdf: bytes, level: str) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, level), actor="test", activation=CONSENTED)
    tampered, at = flip_content_byte(signed.pdf)
    sig = PdfFileReader(io.BytesIO(signed.pdf)).embedded_regular_signatures[0]
    start, length = [int(x) for x in sig.byte_range][:2]
    assert start <= at < start + length, "the byte is inside the signed range, before /Contents"

    report = pki.verifier.verify(tampered)

    assert (report.indication, report.sub_indication, report.genuine) == ("TOTAL-FAILED", "HASH_FAILURE", False)
    [s] = report.signatures
    assert (s.indication, s.sub_indication, s.intact) == ("TOTAL-FAILED", "HASH_FAILURE", False)
    assert "altered" in s.summary.en and "bị sửa" in s.summary.vi
    assert "NOT valid" in report.summary.en
    # the tampered bytes are not the registered file, and nothing else in it is either
    assert report.registry is None or not report.registry.is_current

    context = ValidationContext(trust_roots=[_root(root_pem(pki))], allow_fetching=False, revocation_mode="soft-fail")
    status = validate_pdf_signature(PdfFileReader(io.BytesIO(tampered)).embedded_regular_signatures[0], context)
    assert not status.intact and not status.bottom_line, "pyHanko agrees"


def test_page_appended_to_certified_document(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT", certify=True), actor="test", activation=CONSENTED)
    extended = append_page(signed.pdf)
    assert page_count(extended) == page_count(signed.pdf) + 1

    report = pki.verifier.verify(extended)

    # DocMDP P=2 forbids new pages; EN 319 102-1 has no TOTAL-FAILED sub-indication for a broken
    # signature policy constraint, so SIG_CONSTRAINTS_FAILURE (INDETERMINATE) it is
    assert (report.indication, report.sub_indication, report.genuine) == (
        "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", False)
    [s] = report.signatures
    assert (s.indication, s.sub_indication, s.intact) == ("INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", True)
    assert s.coverage.docmdp_permission == 2 and s.coverage.later_revisions == 1
    assert s.coverage.modification_level == "OTHER" and not s.coverage.changes_allowed
    assert "did not allow" in s.summary.en
    assert any("changed after signing" in n.en for n in report.notes)
    # the report names what changed: the new last page, in the revision after the signature
    assert any(m.category == "page" and m.page == page_count(extended) and m.revision == 3
               for m in report.modifications), report.modifications
    # the signed part is the registered version 1; the file as a whole is not
    assert report.registry is not None and report.registry.version == 1 and not report.registry.is_current

    verdicts = validate_all(extended, root_pem(pki), ltv=True)
    assert verdicts[0].intact and verdicts[0].valid and verdicts[0].docmdp_ok is False, "pyHanko agrees"


@pytest.mark.parametrize("document_type", ["construction-permit", "dossier-result"])
def test_seal_after_certification_is_allowed(pki: Container, specialist: str, seal: str, sample_pdf: bytes,
                                             document_type: str) -> None:
    import dataclasses

    first = pki.signing.sign(dataclasses.replace(request(sample_pdf, specialist, "B-LT", certify=True),
                                                 document_type=document_type,
                                                 seal_fields={"permit_no": "12/GPXD", "owner": "Lê Văn A"}
                                                 if document_type == "construction-permit" else {}), actor="test", activation=CONSENTED)
    second = pki.signing.sign(dataclasses.replace(request(first.pdf, seal, "B-LT"), document_type=document_type),
                              actor="test", activation=CONSENTED)
    report = pki.verifier.verify(second.pdf)

    assert (report.indication, report.genuine) == ("TOTAL-PASSED", True)
    certification, agency = report.signatures
    assert certification.indication == "TOTAL-PASSED" and certification.coverage.docmdp_permission == 2
    assert certification.coverage.later_revisions >= 1 and certification.coverage.changes_allowed
    assert certification.coverage.modification_level in ("FORM_FILLING", "LTA_UPDATES")
    assert certification.coverage.covers == "entire_revision"
    assert agency.indication == "TOTAL-PASSED" and agency.coverage.covers == "entire_file"


def test_page_appended_to_approval_only_document(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """No certification: the signature is still valid for the revision it signed (ETSI judges the
    signed data, and nothing forbade later changes), but the file as it is now is not what was
    signed, so the file is not TOTAL-PASSED and the report says the addition is uncovered."""
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-T", certify=False), actor="test", activation=CONSENTED)
    extended = append_page(signed.pdf)

    report = pki.verifier.verify(extended)

    [s] = report.signatures
    assert (s.indication, s.sub_indication, s.intact) == ("TOTAL-PASSED", None, True)
    assert s.coverage.docmdp_permission is None and s.coverage.covers == "entire_revision"
    assert s.coverage.modification_level == "OTHER" and not s.coverage.changes_allowed
    assert any("later revision" in n.en for n in s.notes)
    assert (report.indication, report.sub_indication, report.genuine) == (
        "INDETERMINATE", "SIG_CONSTRAINTS_FAILURE", False)
    assert any("changed after signing" in n.en for n in report.notes)
    # the report names what changed: the new last page, in the revision after the signature
    assert any(m.category == "page" and m.page == page_count(extended) and m.revision == 3
               for m in report.modifications), report.modifications
    assert report.registry is not None and not report.registry.is_current
