"""Untouched kyso documents pass at every level; withdrawn ones are flagged by the registry (issue 5, cases 1 and 8)."""
from __future__ import annotations

import pytest

from api.container import Container
from signing.registry import lifecycle
from tests.helpers.signing import CONSENTED, request, root_pem
from tests.helpers.validation import validate_all


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_untouched_document_passes_at_its_level(pki: Container, specialist: str, sample_pdf: bytes, level: str) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, level), actor="test", activation=CONSENTED)
    report = pki.verifier.verify(signed.pdf)

    assert (report.indication, report.sub_indication, report.genuine) == ("TOTAL-PASSED", None, True)
    regular = [s for s in report.signatures if s.kind == "signature"]
    [sig] = regular
    assert (sig.indication, sig.sub_indication, sig.intact, sig.level) == ("TOTAL-PASSED", None, True, level)
    assert sig.signer is not None and sig.signer.common_name == "Nguyễn Thị Hồng Nhung"
    assert sig.revocation.status == "good" and sig.revocation.source == "kyso"
    assert sig.coverage.covers == "entire_file" or sig.coverage.modification_level == "LTA_UPDATES"
    assert sig.coverage.changes_allowed
    assert (sig.timestamp is None) is (level == "B-B")
    if sig.timestamp is not None:
        assert sig.timestamp.intact and sig.timestamp.trusted
    archive = [s for s in report.signatures if s.kind == "document_timestamp"]
    assert len(archive) == (1 if level == "B-LTA" else 0)
    assert all(a.indication == "TOTAL-PASSED" for a in archive)

    assert report.registry is not None
    assert (report.registry.document_id, report.registry.status, report.registry.is_current) == (
        signed.document_id, "valid", True)
    assert report.registry.version == report.registry.current_version == 1
    assert "Genuine" in report.summary.en and "xác thực" in report.summary.vi
    assert not report.notes

    # pyHanko's own validator agrees
    [verdict] = validate_all(signed.pdf, root_pem(pki), ltv=level in ("B-LT", "B-LTA"))
    assert verdict.intact and verdict.valid and verdict.trusted and verdict.bottom_line


@pytest.mark.parametrize("certify", [True, False])
def test_person_then_seal_both_pass(pki: Container, specialist: str, seal: str, sample_pdf: bytes,
                                    certify: bool) -> None:
    first = pki.signing.sign(request(sample_pdf, specialist, "B-LT", certify=certify), actor="test", activation=CONSENTED)
    second = pki.signing.sign(request(first.pdf, seal, "B-LT"), actor="test", activation=CONSENTED)
    report = pki.verifier.verify(second.pdf)

    assert (report.indication, report.sub_indication, report.genuine) == ("TOTAL-PASSED", None, True)
    person, agency = report.signatures
    assert [s.indication for s in report.signatures] == ["TOTAL-PASSED", "TOTAL-PASSED"]
    assert person.signer and person.signer.common_name == "Nguyễn Thị Hồng Nhung"
    assert agency.signer and agency.signer.common_name == "Ủy ban nhân dân Phường Ba Đình"
    assert person.coverage.later_revisions >= 1 and person.coverage.changes_allowed
    assert person.coverage.docmdp_permission == (2 if certify else None)
    assert agency.coverage.covers == "entire_file" and agency.coverage.later_revisions == 0
    assert report.registry is not None and report.registry.is_current and report.registry.version == 2

    # the copy handed out after the first signature is genuine too, but no longer the current version
    older = pki.verifier.verify(first.pdf)
    assert older.indication == "TOTAL-PASSED"
    assert older.registry is not None and (older.registry.version, older.registry.is_current) == (1, False)
    assert any("current version is 2" in n.en for n in older.notes)

    verdicts = validate_all(second.pdf, root_pem(pki), ltv=True)
    assert all(v.intact and v.valid and v.trusted and v.docmdp_ok is not False for v in verdicts)


def test_withdrawn_document(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    lifecycle.withdraw(pki.pki, signed.document_id, "cấp nhầm hồ sơ / issued in error", "token:clerk")
    report = pki.verifier.verify(signed.pdf)

    assert report.registry is not None and report.registry.status == "withdrawn"
    assert report.registry.status_reason == "cấp nhầm hồ sơ / issued in error"
    assert report.genuine is False and report.as_dict()["genuine"] is False
    assert "withdrawn" in report.summary.en and "thu hồi" in report.summary.vi
    # the signatures themselves are still sound: withdrawal is the registry's word, not the cryptography's
    assert report.indication == "TOTAL-PASSED"
    assert [s.indication for s in report.signatures] == ["TOTAL-PASSED"]
