"""CA initialisation (idempotent, never overwriting), subordinate mode and certificate import."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.db import transaction
from pki import issuance, store
from pki.authorities import CaSpec, import_certificate, init_hierarchy
from pki.errors import CAExists, CANotReady, CertificateMismatch
from tests import factories
from tests.helpers.db import ISSUING, ROOT


def test_init_is_idempotent(pki):
    again = init_hierarchy(pki.pki, root=ROOT, issuing=ISSUING, actor="test")
    assert again.created == [] and sorted(again.existing) == ["test-issuing", "test-root"]


def test_init_refuses_to_overwrite_a_different_ca(pki):
    changed = CaSpec(name="test-root", common_name="Another Root", organization="kyso")
    with pytest.raises(CAExists, match="never overwrites"):
        init_hierarchy(pki.pki, root=changed, issuing=ISSUING, actor="test")


def test_chain_links_and_responders(pki):
    with transaction(pki.sessions) as session:
        root, issuing = store.get_ca(session, "test-root"), store.get_ca(session, "test-issuing")
        root_cert = x509.load_der_x509_certificate(root.cert_der)
        issuing_cert = x509.load_der_x509_certificate(issuing.cert_der)
        assert root.ocsp_responder_serial and issuing.ocsp_responder_serial
        responder = store.get_certificate(session, issuing.ocsp_responder_serial)
    issuing_cert.verify_directly_issued_by(root_cert)
    root_cert.verify_directly_issued_by(root_cert)
    bc = issuing_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    responder_cert = x509.load_der_x509_certificate(responder.der)
    responder_cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in responder_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert "kyso thử nghiệm" in issuing_cert.subject.rfc4514_string()


def _external_root():
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "RootCA chuyên dùng thử nghiệm")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA384()))
    return key, cert


def _sign_csr(root_key, root_cert, csr_pem: str, ca: bool = True) -> x509.Certificate:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(root_cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1000))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_cert.public_key()), critical=False)
            .sign(root_key, hashes.SHA384()))


def _pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def test_subordinate_ca_from_an_external_root(container):
    sub = CaSpec(name="sub-issuing", common_name="kyso Subordinate CA Hà Nội", organization="Sở KH&CN Hà Nội")
    result = init_hierarchy(container.pki, root=None, issuing=sub, actor="test", subordinate=True)
    assert result.created == ["sub-issuing"] and "BEGIN CERTIFICATE REQUEST" in result.csr_pem
    with pytest.raises(CANotReady):
        issuance.issue(container.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                            commune_code="00004", ca="sub-issuing"), "test")
    # idempotent: the same command prints the same pending CSR again
    again = init_hierarchy(container.pki, root=None, issuing=sub, actor="test", subordinate=True)
    assert again.csr_pem == result.csr_pem and again.created == []

    root_key, root_cert = _external_root()
    other_key, other_root = _external_root()
    good = _sign_csr(root_key, root_cert, result.csr_pem)
    with pytest.raises(CertificateMismatch, match="lacks the issuer"):
        import_certificate(container.pki, "sub-issuing", _pem(good), "test")
    with pytest.raises(CertificateMismatch, match="not signed"):
        forged = _sign_csr(other_key, root_cert, result.csr_pem)  # claims root_cert's name, other key
        import_certificate(container.pki, "sub-issuing", _pem(forged, root_cert), "test")
    not_ca = _sign_csr(root_key, root_cert, result.csr_pem, ca=False)
    with pytest.raises(CertificateMismatch, match="not a CA"):
        import_certificate(container.pki, "sub-issuing", _pem(not_ca, root_cert), "test")
    stranger_csr, _ = factories.csr_pem()
    stranger = _sign_csr(root_key, root_cert, stranger_csr.decode())
    with pytest.raises(CertificateMismatch, match="public key"):
        import_certificate(container.pki, "sub-issuing", _pem(stranger, root_cert), "test")

    ca = import_certificate(container.pki, "sub-issuing", _pem(good, root_cert), "test")
    assert ca.status == "active"
    issued = issuance.issue(container.pki, issuance.IssueRequest(
        profile="specialist", subject=factories.specialist(), commune_code="00004", ca="sub-issuing"), "test")
    leaf = x509.load_der_x509_certificate(issued.certificate.der)
    leaf.verify_directly_issued_by(good)
    with pytest.raises(CANotReady):
        import_certificate(container.pki, "sub-issuing", _pem(good, root_cert), "test")
