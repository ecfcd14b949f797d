"""Every forgery, on an approval and on a certified document, with and without a document timestamp
from kyso's TSA appended after it, judged by the verifier (the doors share it; ``test_doors.py``
carries a representative subset through them). Issue 15: none of these may be genuine, and the
report must name what changed, on which page."""
from __future__ import annotations

import pytest

from api.container import Container
from api.errors import status_for
from core.errors import KysoError
from signing.verify.report import VerificationReport

from . import documents, doors
from .attacks import MALFORMED, MODIFICATIONS, Attack


def _forged(pki: Container, specialist: str, sample_pdf: bytes, attack: Attack, kind: str) -> tuple[bytes, bytes]:
    signed = documents.sign(pki, specialist, documents.bait(sample_pdf, attack.bait), kind)  # type: ignore[arg-type]
    honest = doors.verify(pki, signed.pdf)
    assert isinstance(honest, VerificationReport) and honest.genuine, f"the signed bait: {doors.describe(honest)}"
    return signed.pdf, attack.make(signed.pdf)


@pytest.mark.parametrize("then_timestamp", [False, True], ids=["bare", "then-timestamp"])
@pytest.mark.parametrize("kind", ["approval", "certified"])
@pytest.mark.parametrize("attack", MODIFICATIONS, ids=lambda a: a.name)
def test_modification_is_not_genuine(pki: Container, specialist: str, sample_pdf: bytes, attack: Attack, kind: str,
                                     then_timestamp: bool) -> None:
    _, forged = _forged(pki, specialist, sample_pdf, attack, kind)
    if then_timestamp:
        forged = documents.timestamp(pki, forged)

    report = doors.verify(pki, forged)

    assert isinstance(report, VerificationReport), f"a modified file deserves a report: {doors.describe(report)}"
    assert not report.genuine, doors.describe(report)
    if attack.modifies:
        assert report.modifications, f"the report names no modification: {doors.describe(report)}"
    if attack.page is not None:
        assert any(m.page == attack.page for m in report.modifications), (
            f"no modification named on page {attack.page}: {doors.describe(report)}")


@pytest.mark.parametrize("kind", ["approval", "certified"])
@pytest.mark.parametrize("attack", MALFORMED, ids=lambda a: a.name)
def test_malformed_signature_is_refused_or_not_genuine(pki: Container, specialist: str, sample_pdf: bytes,
                                                       attack: Attack, kind: str) -> None:
    """USF, and an ISA whose ``startxref`` points nowhere (viewers rebuild the xref and show the forged
    page): a failure report or a clear 4xx refusal, never an exception that becomes a 500. (No trailing
    timestamp here: the signature or the file structure is already broken.)"""
    _, forged = _forged(pki, specialist, sample_pdf, attack, kind)

    report = doors.verify(pki, forged)

    if isinstance(report, KysoError):
        assert 400 <= status_for(report) < 500, doors.describe(report)
    else:
        assert not report.genuine, doors.describe(report)
