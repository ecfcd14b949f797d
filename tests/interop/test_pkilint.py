"""pkilint (RFC 5280 / RFC 6960 linters) over a certificate of every profile, the issuer/subject
pairs, the CRLs and the OCSP responses kyso produces. Any ERROR or FATAL finding fails the test."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import NameOID

from api import mtls, tokens
from core.db import transaction
from hsm import KeyType
from pki import crl, ocsp, revocation, store
from pki.authorities import init_hierarchy
from pki.names import SubjectInfo
from pki.reasons import Reason
from tests import factories
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings
from tests.interop.helpers import (
    ISSUING_CA,
    ROOT_CA,
    assert_lint_clean,
    ca_cert_der,
    issue,
    pkilint,
    responder_cert_der,
    write_cert_pem,
)

pytestmark = pytest.mark.interop

# case -> (profile, the CA that issues it; None for the self-signed root)
CASES = {
    "root-ca": ("root-ca", None),
    "issuing-ca": ("issuing-ca", ROOT_CA),
    "specialist-ec-p256": ("specialist", ISSUING_CA),
    "specialist-rsa-2048": ("specialist", ISSUING_CA),
    "seal": ("seal", ISSUING_CA),
    "ocsp-responder": ("ocsp-responder", ISSUING_CA),
    "ocsp-responder-of-root": ("ocsp-responder", ROOT_CA),
    "tsa": ("tsa", ISSUING_CA),
    "qr-seal": ("qr-seal", ISSUING_CA),  # the offline seal of verification QR codes, made by `kyso ca init`
    "api-client": ("api-client", ISSUING_CA),  # mTLS client certificate of a client token, `kyso token cert`
}


@dataclass
class Artifacts:
    """Everything linted, written once per module: certificates (PEM), CRLs and OCSP responses (DER)."""

    directory: Path
    certs: dict[str, Path] = field(default_factory=dict)
    crls: dict[str, Path] = field(default_factory=dict)
    ocsp: dict[str, Path] = field(default_factory=dict)


def _ocsp_request(cert_der: bytes, issuer_der: bytes, *, nonce: bool, algorithm: hashes.HashAlgorithm) -> bytes:
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_der_x509_certificate(cert_der), x509.load_der_x509_certificate(issuer_der), algorithm)
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(b"kyso-interop-nonce"), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _stranger_cert_der(issuer_der: bytes) -> bytes:
    """A certificate kyso never issued, naming our issuing CA as issuer: its serial is unknown."""
    key, now = ec.generate_private_key(ec.SECP256R1()), dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    issuer = x509.load_der_x509_certificate(issuer_der).subject  # the CertID hashes the issuer *name* from here
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _api_client_der(container) -> bytes:  # type: ignore[no-untyped-def]
    """The way `kyso token cert` issues it: a client token, and a CSR whose key stays with the client."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])).sign(key, hashes.SHA256()))
    with transaction(container.sessions) as session:
        tokens.create(session, "hotich-phuong-ba-dinh", tokens.Role.client, "test")
    return mtls.issue_certificate(container.pki, "hotich-phuong-ba-dinh",
                                  csr.public_bytes(serialization.Encoding.PEM), "test").der


def _current_qr_seal_der(container) -> bytes:  # type: ignore[no-untyped-def]
    with transaction(container.sessions) as session:
        return store.current_qr_seal(session).der


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Artifacts]:
    # Certificates do not depend on the database backend, so one SQLite hierarchy serves the module.
    work = tmp_path_factory.mktemp("pkilint")
    container = build_for_test(request, make_settings(work / "home", f"sqlite:///{work / 'kyso.db'}"))
    try:
        init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
        out = Artifacts(work)
        ders = {
            "root-ca": ca_cert_der(container, ROOT_CA),
            "issuing-ca": ca_cert_der(container, ISSUING_CA),
            "specialist-ec-p256": issue(container, key_type=KeyType.EC_P256).der,
            "specialist-rsa-2048": issue(container, key_type=KeyType.RSA_2048).der,
            "seal": issue(container, "seal", SubjectInfo(common_name="Ủy ban nhân dân Phường Ba Đình"), "00004").der,
            "ocsp-responder": responder_cert_der(container, ISSUING_CA),
            "ocsp-responder-of-root": responder_cert_der(container, ROOT_CA),
            "tsa": issue(container, "tsa", SubjectInfo(common_name="kyso Dịch vụ cấp dấu thời gian",
                                                       organization="kyso thử nghiệm"), None).der,
            "qr-seal": _current_qr_seal_der(container),
            "api-client": _api_client_der(container),
        }
        for case, der in ders.items():
            out.certs[case] = write_cert_pem(work / f"{case}.pem", der)

        # Revocation state worth linting: a revoked entry with a reason, and a release from hold.
        revoked = issue(container, subject=factories.specialist("Trần Văn Bình", "001190000002"))
        released = issue(container, subject=factories.specialist("Lê Thị Cúc", "001190000003"))
        revocation.revoke(container.pki, revoked.serial, Reason.keyCompromise, "test")
        revocation.revoke(container.pki, released.serial, Reason.certificateHold, "test")
        revocation.release(container.pki, released.serial, "test")

        issuing_der, sha1, sha256 = ders["issuing-ca"], hashes.SHA1(), hashes.SHA256()
        stranger = _stranger_cert_der(issuing_der)
        requests = {  # label (its first word is the expected status) -> (certificate, nonce?, CertID hash)
            "good-preproduced": (ders["specialist-ec-p256"], False, sha1),
            "good-nonce": (ders["specialist-ec-p256"], True, sha1),
            "good-sha256-certid": (ders["specialist-rsa-2048"], False, sha256),
            "revoked-preproduced": (revoked.der, False, sha1),
            "revoked-nonce": (revoked.der, True, sha1),
            "unknown": (stranger, True, sha1),
        }
        with transaction(container.sessions) as session:
            for label, (cert_der, nonce, algorithm) in requests.items():
                request = _ocsp_request(cert_der, issuing_der, nonce=nonce, algorithm=algorithm)
                answer = ocsp.answer(container.pki, session, request)
                assert answer.status == label.split("-")[0], (label, answer.status)
                assert answer.pre_produced == label.endswith("-preproduced"), label
                out.ocsp[label] = work / f"ocsp-{label}.der"
                out.ocsp[label].write_bytes(answer.der)
            for ca_name in (ROOT_CA, ISSUING_CA):
                ca = store.get_ca(session, ca_name)
                for delta in (False, True):
                    latest = crl.latest(session, ca, delta=delta)
                    assert latest is not None
                    label = f"{ca_name}-{'delta' if delta else 'full'}"
                    out.crls[label] = work / f"{label}.crl"
                    out.crls[label].write_bytes(latest.der)
        yield out
    finally:
        container.engine.dispose()


@pytest.mark.parametrize("case", list(CASES))
def test_certificate_of_every_profile_is_rfc5280_clean(artifacts: Artifacts, case: str) -> None:
    result = pkilint("lint_pkix_cert", "lint", "-s", "ERROR", "--document-format", "PEM", artifacts.certs[case])
    assert_lint_clean(result)


@pytest.mark.parametrize("case", [c for c, (_, issuer) in CASES.items() if issuer is not None])
def test_issuer_and_subject_chain_cleanly(artifacts: Artifacts, case: str) -> None:
    issuer = "root-ca" if CASES[case][1] == ROOT_CA else "issuing-ca"
    result = pkilint("lint_pkix_signer_signee_cert_chain", "lint", "-s", "ERROR", "--document-format", "PEM",
                     artifacts.certs[issuer], artifacts.certs[case])
    assert_lint_clean(result)


@pytest.mark.parametrize("label", [f"{ca}-{kind}" for ca in (ROOT_CA, ISSUING_CA) for kind in ("full", "delta")])
def test_crls_are_rfc5280_clean(artifacts: Artifacts, label: str) -> None:
    result = pkilint("lint_crl", "lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR", "--document-format", "DER",
                     artifacts.crls[label])
    assert_lint_clean(result)


@pytest.mark.parametrize("label", ["good-preproduced", "good-nonce", "good-sha256-certid", "revoked-preproduced",
                                   "revoked-nonce", "unknown"])
def test_ocsp_responses_are_rfc6960_clean(artifacts: Artifacts, label: str) -> None:
    result = pkilint("lint_ocsp_response", "lint", "-s", "ERROR", "--document-format", "DER", artifacts.ocsp[label])
    assert_lint_clean(result)


def test_pkilint_does_flag_a_bad_ca_certificate(tmp_path: Path) -> None:
    """Control: the exit-code check above is not vacuous; a CA certificate without critical
    basicConstraints, keyUsage or subjectKeyIdentifier is reported at ERROR severity."""
    key, now = ec.generate_private_key(ec.SECP256R1()), dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bad CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "bad.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = pkilint("lint_pkix_cert", "lint", "-s", "ERROR", "--document-format", "PEM", path)
    assert result.returncode == 3, str(result)
    for code in ("pkix.basic_constraints_extension_not_critical", "pkix.ca_certificate_no_ku_extension",
                 "pkix.certificate_skid_ca_missing"):
        assert f"{code} (ERROR)" in result.stdout, str(result)
