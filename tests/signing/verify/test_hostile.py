"""Hostile and odd input: clear kyso errors or a report, never an unexpected exception (issue 5, case 9)."""
from __future__ import annotations

import dataclasses
import io
import random

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from api.container import Container
from core.errors import InvalidInput
from signing.errors import EncryptedPdf, PdfTooLarge, UnreadablePdf
from signing.verify.report import VerificationReport
from signing.verify.verifier import Verifier
from tests.helpers.signing import CONSENTED, CORPUS, request


@pytest.mark.parametrize("data", [b"", b"hello, not a pdf", b"\x89PNG\r\n\x1a\n" + bytes(200),
                                  b"%PDF-1.7\nthis is not really a PDF\n%%EOF"], ids=["empty", "text", "png", "fake"])
def test_not_a_pdf(pki: Container, data: bytes) -> None:
    with pytest.raises(UnreadablePdf) as caught:
        pki.verifier.verify(data)
    assert caught.value.code == "unreadable_pdf" and caught.value.message


def test_encrypted_pdf(pki: Container) -> None:
    with pytest.raises(EncryptedPdf, match="encrypted"):
        pki.verifier.verify((CORPUS / "graph-encrypted.pdf").read_bytes())


def test_too_large(pki: Container, sample_pdf: bytes) -> None:
    small = pki.settings.model_copy(update={"max_pdf_bytes": 1024})
    with pytest.raises(PdfTooLarge):
        Verifier(dataclasses.replace(pki.pki, settings=small), pki.signing.material).verify(sample_pdf)


def test_unsigned_pdf(pki: Container, sample_pdf: bytes) -> None:
    report = pki.verifier.verify(sample_pdf)
    assert (report.indication, report.sub_indication, report.genuine) == ("INDETERMINATE", "NO_SIGNATURE_FOUND", False)
    assert report.signatures == () and report.registry is None
    assert "no digital signature" in report.summary.en


def test_fuzzed_corpus_file(pki: Container) -> None:
    try:
        report = pki.verifier.verify((CORPUS / "fuzz-378014596.pdf").read_bytes())
    except InvalidInput as exc:
        assert exc.code in ("unreadable_pdf", "encrypted_pdf")
    else:
        assert report.indication == "INDETERMINATE" and report.sub_indication == "NO_SIGNATURE_FOUND"


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_signed_pdf(pki: Container, specialist: str, sample_pdf: bytes, keep: float) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    cut = signed.pdf[: int(len(signed.pdf) * keep)]
    try:
        report = pki.verifier.verify(cut)
    except InvalidInput as exc:
        assert exc.code == "unreadable_pdf", exc.code
        return
    assert isinstance(report, VerificationReport)
    assert report.indication != "TOTAL-PASSED" and not report.genuine


def test_garbled_signature_contents(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """/Contents hex overwritten with other hex: a FORMAT_FAILURE or crypto failure, in a report."""
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    sig = PdfFileReader(io.BytesIO(signed.pdf)).embedded_regular_signatures[0]
    start = [int(x) for x in sig.byte_range][1] + 1  # just after '<'
    garbled = signed.pdf[:start + 200] + b"00" * 100 + signed.pdf[start + 400:]
    report = pki.verifier.verify(garbled)
    [s] = report.signatures
    assert s.indication == "TOTAL-FAILED" and s.sub_indication in ("FORMAT_FAILURE", "SIG_CRYPTO_FAILURE",
                                                                   "HASH_FAILURE")
    assert report.indication == "TOTAL-FAILED" and not report.genuine


def test_mutated_signed_pdfs_never_crash(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED).pdf
    rng = random.Random(20261122)
    outcomes: dict[str, int] = {}
    for _ in range(25):
        data = bytearray(signed)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            report = pki.verifier.verify(bytes(data))
            key = report.indication
        except InvalidInput as exc:
            key = exc.code
        outcomes[key] = outcomes.get(key, 0) + 1
    assert set(outcomes) <= {"TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE", "unreadable_pdf"}, outcomes
