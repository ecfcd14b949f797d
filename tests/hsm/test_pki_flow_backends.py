"""A whole PKI flow with each backend holding the CA's keys: nothing above hsm/ knows which."""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x_ocsp

from core.db import transaction
from hsm import KeyStoreRegistry
from pki import crl, issuance, ocsp, revocation, store
from pki.authorities import init_hierarchy
from pki.reasons import Reason
from tests import factories
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings


def test_ca_init_issue_revoke_ocsp(request, keystore, tmp_path):
    container = build_for_test(request, make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}"))
    soft = container.pki.keystores.get("soft")
    container.pki.keystores = KeyStoreRegistry({"soft": soft, keystore.scheme: keystore}, keystore.scheme)
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    with transaction(container.sessions) as session:
        root, issuing = store.get_ca(session, "test-root"), store.get_ca(session, "test-issuing")
        assert root.key_ref.startswith(keystore.scheme + ":") and issuing.key_ref.startswith(keystore.scheme + ":")
        issuing_cert = x509.load_der_x509_certificate(issuing.cert_der)
    issuing_cert.verify_directly_issued_by(x509.load_der_x509_certificate(root.cert_der))

    result = issuance.issue(container.pki, issuance.IssueRequest(
        profile="specialist", subject=factories.specialist(), commune_code="00004"), "test")
    assert result.key_ref.startswith(keystore.scheme + ":")
    leaf = x509.load_der_x509_certificate(result.certificate.der)
    leaf.verify_directly_issued_by(issuing_cert)
    assert leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        keystore.public_key(result.key_ref).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    revocation.revoke(container.pki, result.certificate.serial, Reason.keyCompromise, "test")
    request = x_ocsp.OCSPRequestBuilder().add_certificate(leaf, issuing_cert, hashes.SHA1()).add_extension(
        x509.OCSPNonce(b"backend-nonce-01"), critical=False).build()
    with transaction(container.sessions) as session:
        answer = ocsp.answer(container.pki, session, request.public_bytes(serialization.Encoding.DER))
        full = x509.load_der_x509_crl(crl.latest(session, store.get_ca(session, "test-issuing"), delta=False).der)
    response = x_ocsp.load_der_ocsp_response(answer.der)
    assert response.certificate_status is x_ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    assert full.is_signature_valid(issuing_cert.public_key())
    assert full.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    container.engine.dispose()
