"""Signatures from a CA kyso does not know, then configured as a trust anchor (issue 5, case 7).

The throw-away CA is built in the test with pyca/cryptography and the files are signed with plain
pyHanko; the signer certificate declares a CRL distribution point (on a closed port), so its
revocation status must come from the file's DSS.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature

from api.container import Container
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import ForeignCA, trusting
from tests.helpers.signing import CORPUS
from tests.helpers.validation import _root


@pytest.fixture
def foreign(frozen: FrozenClock) -> ForeignCA:
    return ForeignCA.create(frozen.moment)


@pytest.mark.parametrize("pss", [False, True], ids=["pkcs1v15", "pss"])
def test_unknown_root_is_indeterminate(pki: Container, foreign: ForeignCA, pss: bool) -> None:
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=pss, revinfo="crl")

    report = pki.verifier.verify(pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication, s.intact) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND", True)
    assert s.signer is not None and s.signer.common_name == "Trần Văn Ngoại Tỉnh"
    assert s.signature_algorithm == ("rsassa_pss" if pss else "sha256_rsa")
    assert "trusted authority" in s.summary.en
    assert (report.indication, report.sub_indication, report.genuine) == (
        "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND", False)
    assert report.registry is None


@pytest.mark.parametrize("pss", [False, True], ids=["pkcs1v15", "pss"])
@pytest.mark.parametrize("revinfo", ["crl", "ocsp"])
def test_configured_anchor_with_revocation_in_dss(pki: Container, foreign: ForeignCA, tmp_path: Path, pss: bool,
                                                  revinfo: str) -> None:
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=pss, revinfo=revinfo)
    verifier = trusting(pki, [foreign.write_root(tmp_path)])

    report = verifier.verify(pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication, s.intact) == ("TOTAL-PASSED", None, True), s.summary.en
    assert s.revocation.status == "good" and s.revocation.source == "dss"
    assert s.trust_anchor is not None and "configured" in s.trust_anchor
    assert s.level == "B-B"  # a DSS without a timestamp is not B-LT
    assert (report.indication, report.genuine) == ("TOTAL-PASSED", True)

    # pyHanko alone, hard-fail from the same DSS, agrees
    reader = PdfFileReader(io.BytesIO(pdf))
    context = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": [_root(foreign.root_pem())], "allow_fetching": False, "revocation_mode": "hard-fail"})
    status = validate_pdf_signature(reader.embedded_regular_signatures[0], context)
    assert status.intact and status.valid and status.trusted and status.bottom_line


def test_configured_anchor_without_revocation_data(pki: Container, foreign: ForeignCA, tmp_path: Path) -> None:
    """The certificate names a CRL the file does not carry and kyso may not fetch
    (verify_fetch_revocation=False): the status cannot be known now, TRY_LATER (EN 319 102-1 5.2.6)."""
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=True, revinfo=None)

    report = trusting(pki, [foreign.write_root(tmp_path)]).verify(pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication, s.intact) == ("INDETERMINATE", "TRY_LATER", True)
    assert s.revocation.status == "unknown" and s.revocation.source == "none"
    assert "check again later" in s.summary.en
    assert (report.indication, report.sub_indication, report.genuine) == ("INDETERMINATE", "TRY_LATER", False)


def test_anchor_folder_and_intermediate_only(pki: Container, foreign: ForeignCA, tmp_path: Path) -> None:
    """KYSO_TRUST_ANCHORS may name a folder; a non-self-signed certificate there is never an anchor."""
    folder = tmp_path / "anchors"
    folder.mkdir()
    foreign.write_root(folder)
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=False, revinfo="crl")
    assert trusting(pki, [folder]).verify(pdf).indication == "TOTAL-PASSED"

    from cryptography.hazmat.primitives import serialization

    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(foreign.signer.public_bytes(serialization.Encoding.PEM))
    report = trusting(pki, [leaf_only]).verify(pdf)
    assert (report.indication, report.sub_indication) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")
