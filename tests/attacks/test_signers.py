"""Signatures an attacker makes without the specialist: a document timestamp from kyso's public TSA
(alone, or followed by changes), a kyso mTLS client certificate (EKU clientAuth) used to sign, a
withdrawn document whose unsigned ``/Contents`` padding was touched, and a file of 40 self-signed
signatures sent to stall the public verifier."""
from __future__ import annotations

import time
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader

from api.container import Container
from core import clock
from core.db import transaction
from signing.registry import lifecycle, records
from signing.registry.records import SignatureValue
from signing.verify.report import VerificationReport

from . import documents, doors, forge


def test_timestamp_only_is_not_genuine(pki: Container, client: TestClient, specialist: str, sample_pdf: bytes,
                                       tmp_path: Path) -> None:
    """Issue 15 §4: a file whose only signature is a document timestamp is "timestamped, not signed"."""
    other = documents.sign(pki, specialist, sample_pdf, "approval")  # a registered id for the citizen page
    stamped = documents.timestamp(pki, sample_pdf)

    report = doors.verify(pki, stamped)

    assert isinstance(report, VerificationReport) and not report.genuine, doors.describe(report)
    assert [s.kind for s in report.signatures] == ["document_timestamp"]
    doors.assert_refused_everywhere(pki, client, stamped, other.document_id, tmp_path)


@pytest.mark.parametrize("change,page", [(forge.add_page, 5), (forge.append_content, 1)],
                         ids=["page_added", "content_appended"])
def test_changes_after_a_timestamp_are_not_genuine(pki: Container, client: TestClient, specialist: str,
                                                   sample_pdf: bytes, tmp_path: Path, change, page: int) -> None:  # type: ignore[no-untyped-def]
    other = documents.sign(pki, specialist, sample_pdf, "approval")
    forged = change(documents.timestamp(pki, sample_pdf))

    report = doors.verify(pki, forged)

    assert isinstance(report, VerificationReport) and not report.genuine, doors.describe(report)
    assert any(m.page == page for m in report.modifications), doors.describe(report)
    doors.assert_refused_everywhere(pki, client, forged, other.document_id, tmp_path)


def test_client_auth_certificate_cannot_sign_documents(pki: Container, client: TestClient, specialist: str,
                                                       sample_pdf: bytes, tmp_path: Path) -> None:
    """Issue 15 §5: a kyso certificate whose EKU is clientAuth only (the api-client profile) chains to
    kyso's root and has digitalSignature, but it is not a document-signing certificate."""
    other = documents.sign(pki, specialist, sample_pdf, "approval")
    forged = documents.client_auth_signed(pki, sample_pdf)

    report = doors.verify(pki, forged)

    assert isinstance(report, VerificationReport) and not report.genuine, doors.describe(report)
    doors.assert_refused_everywhere(pki, client, forged, other.document_id, tmp_path)


def test_withdrawn_document_with_padding_changed_stays_withdrawn(pki: Container, client: TestClient,
                                                                 specialist: str, sample_pdf: bytes,
                                                                 tmp_path: Path) -> None:
    """Issue 15 §3: the registry is found by the signature, not the file hash, so one changed hex digit
    in the unsigned ``/Contents`` padding does not turn a withdrawn document into an unregistered one."""
    signed = documents.sign(pki, specialist, sample_pdf, "approval")
    lifecycle.withdraw(pki.pki, signed.document_id, "cấp nhầm người / issued to the wrong person", "test")
    as_withdrawn = doors.verify(pki, signed.pdf)
    assert isinstance(as_withdrawn, VerificationReport) and not as_withdrawn.genuine
    assert as_withdrawn.registry is not None and as_withdrawn.registry.status == "withdrawn"

    forged = forge.change_contents_padding(signed.pdf)
    report = doors.verify(pki, forged)

    assert isinstance(report, VerificationReport) and not report.genuine, doors.describe(report)
    assert report.registry is not None and report.registry.status == "withdrawn", (
        f"registry: {report.registry}; {doors.describe(report)}")
    doors.assert_refused_everywhere(pki, client, forged, signed.document_id, tmp_path)


def test_forty_self_signed_signatures_are_answered(pki: Container, client: TestClient, sample_pdf: bytes,
                                                   record_property) -> None:  # type: ignore[no-untyped-def]
    """Issue 15 §6: a file with 40 self-signed signatures in 40 revisions is refused (422) or reported
    not genuine by the public verifier. The CPU it took is printed and recorded, not asserted (the
    bound belongs to ``make bench``)."""
    hostile = documents.many_self_signed(sample_pdf, 40)

    started = time.process_time()
    answer = doors.api(client, hostile)
    spent = time.process_time() - started

    record_property("verify_cpu_seconds", round(spent, 2))
    print(f"\n40-signature file ({len(hostile) // 1024} KiB): HTTP {answer.status}, {spent:.2f} s of CPU")
    # 40 is over the default limit of 20 signatures: refused before any is parsed
    assert answer.status == 422 and answer.body["error"]["code"] == "too_complex", f"{answer.status}: {answer.body}"


def test_a_signhash_signature_does_not_vouch_for_what_rides_along(pki: Container, specialist: str,
                                                                    sample_pdf: bytes) -> None:
    """kyso records raw CSC signHash values, but the client's software wrote the revision around such a
    value: a revision kyso's own service wrote may skip the object review, this one must not. The
    forged revision adds a FreeText over the signed text and a signature whose value is on record as a
    signHash (recorded here directly, as signHash would)."""
    signed = documents.sign(pki, specialist, sample_pdf, "approval")
    forged = forge.add_annotation(signed.pdf, "FreeText", signer=documents.self_signed_signer())
    riding = PdfFileReader(BytesIO(forged)).embedded_signatures[-1]
    with transaction(pki.sessions) as session:
        records.record(session, [SignatureValue(riding.signer_info["signature"].native, "signhash", None)],
                                 created_at=clock.now())

    report = doors.verify(pki, forged)

    assert isinstance(report, VerificationReport) and not report.genuine, doors.describe(report)
    assert any(m.category == "annotation" and m.page == 1 for m in report.modifications), doors.describe(report)
