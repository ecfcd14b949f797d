"""The count before the costly work: too many signatures or revisions is a clear ``TooComplex`` (422)."""
from __future__ import annotations

from io import BytesIO

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers

from core.settings import Settings
from signing import loop
from signing.errors import TooComplex
from signing.verify.limits import check_limits
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import ForeignCA
from tests.helpers.signing import CORPUS


def _signed(ca: ForeignCA, pdf: bytes, count: int) -> bytes:
    """``count`` signatures of a CA kyso does not know, one revision each (cheap RSA, no network)."""
    signer = ca.signer_for_pyhanko(pss=False)
    for n in range(count):
        meta = signers.PdfSignatureMetadata(field_name=f"Sig{n}", md_algorithm="sha256",
                                            subfilter=fields.SigSeedSubFilter.PADES)
        out = BytesIO()
        loop.run(signers.PdfSigner(meta, signer).async_sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf), strict=False),
                                                                 output=out))
        pdf = out.getvalue()
    return pdf


def _revisions(pdf: bytes, count: int) -> bytes:
    """``count`` incremental updates that each rewrite the document information dictionary."""
    for n in range(count):
        writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
        writer.set_info(None)  # a fresh /Info: a harmless object change, one more xref section
        out = BytesIO()
        writer.write(out)
        pdf = out.getvalue()
    return pdf


def _reader(pdf: bytes) -> PdfFileReader:
    return PdfFileReader(BytesIO(pdf), strict=False)


def test_signatures_over_the_limit_are_refused_before_validation(frozen: FrozenClock) -> None:
    pdf = _signed(ForeignCA.create(frozen.moment), (CORPUS / "fourpages.pdf").read_bytes(), 3)
    check_limits(_reader(pdf), max_signatures=3, max_revisions=50)
    with pytest.raises(TooComplex) as refused:
        check_limits(_reader(pdf), max_signatures=2, max_revisions=50)
    assert refused.value.code == "too_complex" and refused.value.details["counted"] == "signatures"
    assert "at most 2" in refused.value.message


def test_revisions_over_the_limit_are_refused() -> None:
    pdf = _revisions((CORPUS / "fourpages.pdf").read_bytes(), 4)
    revisions = _reader(pdf).xrefs.total_revisions
    check_limits(_reader(pdf), max_signatures=20, max_revisions=revisions)
    with pytest.raises(TooComplex) as refused:
        check_limits(_reader(pdf), max_signatures=20, max_revisions=revisions - 1)
    assert refused.value.details == {"counted": "revisions", "found": revisions, "limit": revisions - 1}


def test_settings_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(home=tmp_path)
    assert (settings.verify_max_signatures, settings.verify_max_revisions) == (20, 50)
    assert settings.verify_time_budget_seconds == 10 and settings.verify_queue_wait_seconds == 2
    assert settings.verify_max_concurrent >= 2


def test_the_time_budget_counts_the_files_work_not_the_machines_load() -> None:
    """A busy machine (here: the thread waiting) must not make a sound file "too complex"; the file's
    own CPU work does. The wall-clock cap (3x) still frees a slot whose thread only waits."""
    import time

    from signing.verify.limits import Budget

    waiting = Budget(0.5)
    time.sleep(0.3)  # stands for waiting on the CPU, the database, PDFium's lock
    assert not waiting.spent() and waiting.remaining() > 0.4
    working = Budget(0.05)
    start = time.thread_time()
    while time.thread_time() - start < 0.08:  # CPU work beyond the budget
        sum(range(1000))
    assert working.spent() and working.remaining() == 0.0
    capped = Budget(0.02, wall_factor=3.0)
    time.sleep(0.1)  # waited past 3 x 0.02 s
    assert capped.spent()


def test_a_verification_that_runs_out_of_budget_is_refused_as_too_complex(frozen: FrozenClock, pki) -> None:  # type: ignore[no-untyped-def]
    """The budget is enforced inside the verification (here a budget no real verification fits)."""
    pdf = _signed(ForeignCA.create(frozen.moment), (CORPUS / "fourpages.pdf").read_bytes(), 2)
    import dataclasses

    from signing.verify.verifier import Verifier

    hurried = pki.settings.model_copy(update={"verify_time_budget_seconds": 1e-6})
    with pytest.raises(TooComplex, match="longer than kyso allows"):
        Verifier(dataclasses.replace(pki.pki, settings=hurried), pki.signing.material).verify(pdf)
