"""Validation with time (EN 319 102-1 5.5/5.6): revocation before or after the signing time, expiry,
and what a timestamp proves (issue 5, cases 4-6).

kyso refuses to sign with a revoked credential, so the signature "made after revocation" is made
with pyHanko directly, using kyso's own ``KeyStoreSigner`` and kyso's TSA, as a stolen key would.
"""
from __future__ import annotations

import datetime as dt

import pytest

from api.container import Container
from api.scheduler import republish_once
from pki import revocation
from pki.reasons import Reason
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import not_after_of, revoke, serial_of, sign_directly
from tests.helpers.signing import CONSENTED, request, root_pem
from tests.helpers.validation import validate_all


@pytest.mark.parametrize("timestamp", [True, False], ids=["with-timestamp", "no-timestamp"])
def test_signed_after_revocation(pki: Container, specialist: str, sample_pdf: bytes, frozen: FrozenClock,
                                 timestamp: bool) -> None:
    material = pki.signing.material.signer(specialist)  # taken while the credential could still sign
    frozen.advance(minutes=5)
    revoked_at = frozen.moment
    revoke(pki, specialist)
    frozen.advance(hours=1)
    pdf = sign_directly(pki, material, sample_pdf, timestamp=timestamp)  # the TSA says: an hour after revocation
    frozen.advance(minutes=5)

    report = pki.verifier.verify(pdf)

    [s] = report.signatures
    assert s.intact and s.revocation.status == "revoked" and s.revocation.revoked_at == revoked_at
    assert s.revocation.reason == "affiliation_changed"
    if timestamp:
        assert s.timestamp is not None and s.timestamp.trusted and s.timestamp.time > revoked_at
        assert (s.indication, s.sub_indication) == ("TOTAL-FAILED", "REVOKED")
        assert s.revocation.revoked_after_signing is False
        assert "after" in s.summary.en and "had been revoked" in s.summary.en and "moved post" in s.summary.en
        assert (report.indication, report.sub_indication) == ("TOTAL-FAILED", "REVOKED")
    else:
        # no proof of when it was signed: perhaps before the revocation, perhaps not
        assert (s.indication, s.sub_indication) == ("INDETERMINATE", "REVOKED_NO_POE")
        assert s.revocation.revoked_after_signing is None
        assert "no timestamp" in s.summary.en
        assert (report.indication, report.sub_indication) == ("INDETERMINATE", "REVOKED_NO_POE")
    assert report.registry is None and not report.genuine

    # pyHanko alone, with kyso's current status data, hard-fail, at the same moment: revoked too
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from tests.helpers.validation import _root

    sig = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures[0]
    revinfo = pki.signing.material.revocation_data(list(sig.other_embedded_certs) + [sig.signer_cert])
    context = ValidationContext(trust_roots=[_root(root_pem(pki))], other_certs=list(revinfo.certs),
                                ocsps=list(revinfo.ocsps), crls=list(revinfo.crls), allow_fetching=False,
                                revocation_mode="hard-fail", retroactive_revinfo=True, moment=frozen.moment)
    status = validate_pdf_signature(sig, context, ts_validation_context=context)
    assert status.intact and status.valid and not status.trusted and status.revoked


def test_revoked_after_signing_b_lt_stays_valid(pki: Container, specialist: str, sample_pdf: bytes,
                                                frozen: FrozenClock) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    signed_at = frozen.moment
    frozen.advance(days=30)
    revoked_at = frozen.moment
    revoke(pki, specialist)  # affiliationChanged: the officer moved to another commune
    frozen.advance(days=1)
    republish_once(pki)  # the scheduler keeps OCSP responses and CRLs fresh meanwhile

    report = pki.verifier.verify(signed.pdf)

    assert (report.indication, report.sub_indication, report.genuine) == ("TOTAL-PASSED", None, True)
    [s] = report.signatures
    assert (s.indication, s.level) == ("TOTAL-PASSED", "B-LT")
    assert s.timestamp is not None and s.timestamp.time == signed_at
    assert s.revocation.status == "revoked" and s.revocation.revoked_at == revoked_at
    assert s.revocation.revoked_after_signing is True and s.revocation.reason == "affiliation_changed"
    assert "Valid when signed" in s.summary.en and "revoked later" in s.summary.en and "moved post" in s.summary.en
    assert "hợp lệ tại thời điểm ký" in s.summary.vi and "chuyển công tác" in s.summary.vi


def test_revoked_after_signing_b_b_cannot_be_confirmed(pki: Container, specialist: str, sample_pdf: bytes,
                                                       frozen: FrozenClock) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-B"), actor="test", activation=CONSENTED)
    frozen.advance(days=30)
    revoke(pki, specialist)
    frozen.advance(days=1)
    republish_once(pki)

    report = pki.verifier.verify(signed.pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication) == ("INDETERMINATE", "REVOKED_NO_POE")
    assert s.revocation.status == "revoked" and s.revocation.revoked_after_signing is None
    assert (report.indication, report.sub_indication, report.genuine) == ("INDETERMINATE", "REVOKED_NO_POE", False)


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT"])
@pytest.mark.parametrize("republished", [True, False], ids=["ocsp-refreshed", "ocsp-stale"])
def test_expired_certificate(pki: Container, specialist: str, sample_pdf: bytes, frozen: FrozenClock,
                             level: str, republished: bool) -> None:
    """Two years on, the signer's certificate has expired. Without a timestamp nothing proves the
    signature was made while it was valid (OUT_OF_BOUNDS_NO_POE); with one, it was (TOTAL-PASSED).

    ``ocsp-stale``: kyso's stored OCSP responses (24 h) and its responder certificate (1 year) have
    long expired too, as when the scheduler has not run; the verdict must not depend on that."""
    signed = pki.signing.sign(request(sample_pdf, specialist, level), actor="test", activation=CONSENTED)
    frozen.set(not_after_of(pki, specialist) + dt.timedelta(days=1))
    if republished:
        republish_once(pki)  # what the scheduler does: new responder, fresh responses and CRLs

    report = pki.verifier.verify(signed.pdf)

    [s] = report.signatures
    if not republished:
        # kyso's own published status data is a month... two years old and its responder certificate
        # has expired: nothing about the chain (nor the TSA's) can be established *now*, so no POE
        # either. EN 319 102-1: INDETERMINATE; TRY_LATER says what helps (fresh data, i.e. the
        # scheduler running). Never TOTAL-PASSED, never an exception.
        assert s.indication == "INDETERMINATE" and s.sub_indication in ("TRY_LATER", "OUT_OF_BOUNDS_NO_POE"), s
        assert report.indication == "INDETERMINATE" and not report.genuine
        return
    if level == "B-B":
        assert (s.indication, s.sub_indication) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE")
        assert "expired" in s.summary.en and "hết hạn" in s.summary.vi
        assert (report.indication, report.genuine) == ("INDETERMINATE", False)
    else:
        assert (s.indication, s.sub_indication, s.level) == ("TOTAL-PASSED", None, level), s
        assert s.timestamp is not None and s.timestamp.trusted
        assert (report.indication, report.genuine) == ("TOTAL-PASSED", True)


def test_pyhanko_agrees_on_revoked_after_signing(pki: Container, specialist: str, sample_pdf: bytes,
                                                 frozen: FrozenClock) -> None:
    """pyHanko, given only the file (its DSS from signing time), sees a good signature at B-LT."""
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    frozen.advance(days=1)
    revoke(pki, specialist)
    [verdict] = validate_all(signed.pdf, root_pem(pki), ltv=True)
    assert verdict.intact and verdict.valid


@pytest.mark.parametrize("compromised_days_after_signing,verdict", [(-2, ("TOTAL-FAILED", "REVOKED")),
                                                                      (10, ("TOTAL-PASSED", None))],
                         ids=["compromised-before-signing", "compromised-after-signing"])
def test_invalidity_date_decides_what_a_timestamp_saves(pki: Container, specialist: str, sample_pdf: bytes,
                                                        frozen: FrozenClock, compromised_days_after_signing: int,
                                                        verdict: tuple[str, str | None]) -> None:
    """keyCompromise with an invalidity date (RFC 5280 5.3.2), the revocation itself 30 days after
    signing: a key in the wrong hands before the document was signed voids the signature even though
    its timestamp predates the revocation; a compromise after signing leaves it "valid when signed"."""
    start = frozen.moment
    signed_at = frozen.advance(days=2)
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    frozen.advance(days=30)
    revocation.revoke(pki.pki, serial_of(pki, specialist), Reason.keyCompromise, "test",
                      invalidity_date=max(start, signed_at + dt.timedelta(days=compromised_days_after_signing)))
    frozen.advance(days=1)
    republish_once(pki)

    report = pki.verifier.verify(signed.pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication) == verdict
    assert s.revocation.revoked_after_signing is (verdict[0] == "TOTAL-PASSED")
    assert report.genuine is (verdict[0] == "TOTAL-PASSED")
