"""The validation cache: reused across documents of one signer, dropped at once on revocation (issue 5, case 10)."""
from __future__ import annotations

from api.container import Container
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import revoke
from tests.helpers.signing import CONSENTED, request


def test_second_document_of_a_signer_reuses_the_chain_validation(pki: Container, specialist: str, sample_pdf: bytes,
                                                                  frozen: FrozenClock) -> None:
    a = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    b = pki.signing.sign(request(sample_pdf, specialist, "B-T", reason="bản thứ hai"), actor="test", activation=CONSENTED)
    verifier = pki.verifier
    assert verifier.verify(a.pdf).indication == "TOTAL-PASSED"
    cached = verifier.chains.snapshot()
    assert cached, "kyso chains are cached"

    assert verifier.verify(b.pdf).indication == "TOTAL-PASSED"
    after = verifier.chains.snapshot()
    assert set(after) == set(cached), "no new chain validation for the same signer and TSA"
    assert all(after[k] is cached[k] for k in cached)


def test_revocation_between_two_verifications_is_seen_at_once(pki: Container, specialist: str, sample_pdf: bytes,
                                                              frozen: FrozenClock) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED)
    assert pki.verifier.verify(signed.pdf).indication == "TOTAL-PASSED"
    frozen.advance(seconds=10)
    revoke(pki, specialist)  # no sleeping, no cache clearing: the next verification must know
    report = pki.verifier.verify(signed.pdf)
    [s] = report.signatures
    assert s.revocation.status == "revoked"
    assert (report.indication, report.sub_indication) == ("INDETERMINATE", "REVOKED_NO_POE")


def test_an_outage_during_verification_is_unavailable_not_damaged(pki: Container, specialist: str,
                                                                  sample_pdf: bytes, monkeypatch) -> None:
    """A database that goes away between the registry lookup and the revocation data must answer 503
    (retry), never report a sound signature as damaged (found under `make load`)."""
    import pytest

    from core.db import unavailable
    from core.errors import Unavailable

    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED)
    verifier = pki.verifier
    verifier.material._revinfo.clear()

    def gone(*args, **kwargs):
        raise unavailable()

    monkeypatch.setattr(verifier.material, "_load_revinfo", gone)  # the query that would meet the outage
    with pytest.raises(Unavailable):
        verifier.verify(signed.pdf)
    monkeypatch.undo()
    assert verifier.verify(signed.pdf).indication == "TOTAL-PASSED"
