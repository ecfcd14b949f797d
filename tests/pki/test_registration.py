"""Registration-authority mode against a real external CA: another kyso, served over HTTP."""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.db import transaction
from core.errors import Unavailable
from pki import issuance, registration, revocation, store
from pki.errors import CertificateMismatch, RevocationConflict
from pki.models import Credential
from pki.reasons import Reason
from tests import factories


def test_key_here_certificate_there_status_tracked(pki, live_pki):
    external, server = live_pki  # plays the government's specialized CA
    pending = registration.request(pki.pki, factories.specialist(), "test", commune_code="00004")
    csr = x509.load_pem_x509_csr(pending.csr_pem.encode())
    assert csr.is_signature_valid and "Phường Ba Đình" in csr.subject.rfc4514_string()

    issued = issuance.issue(external.pki, issuance.IssueRequest(
        profile="specialist", subject=factories.specialist(), commune_code="00004", csr=pending.csr_pem.encode()), "ext")
    with transaction(external.sessions) as session:
        issuer_pem = x509.load_der_x509_certificate(store.get_ca(session, "test-issuing").cert_der).public_bytes(serialization.Encoding.PEM)
    leaf_pem = x509.load_der_x509_certificate(issued.certificate.der).public_bytes(serialization.Encoding.PEM)

    with pytest.raises(CertificateMismatch, match="issuing CA"):
        registration.import_certificate(pki.pki, pending.credential_id, leaf_pem, "test")
    other = issuance.issue(external.pki, issuance.IssueRequest(
        profile="specialist", subject=factories.specialist(), commune_code="00004"), "ext").certificate
    with pytest.raises(CertificateMismatch, match="carries the key"):
        registration.import_certificate(pki.pki, pending.credential_id,
                                        x509.load_der_x509_certificate(other.der).public_bytes(serialization.Encoding.PEM) + issuer_pem, "test")

    row = registration.import_certificate(pki.pki, pending.credential_id, leaf_pem + issuer_pem, "test")
    assert row.external and row.key_ref == pending.key_ref
    with transaction(pki.sessions) as session:
        assert session.get(Credential, pending.credential_id).status == "active"
    with pytest.raises(RevocationConflict, match="external CA"):
        revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "test")

    assert registration.check_status(pki.pki, row.serial, "test").status == "good"
    revocation.revoke(external.pki, row.serial, Reason.affiliationChanged, "ext")
    check = registration.check_status(pki.pki, row.serial, "test")
    assert (check.status, check.reason) == ("revoked", "affiliationChanged")
    with transaction(pki.sessions) as session:
        assert store.get_certificate(session, row.serial).status == "revoked"
        assert session.get(Credential, pending.credential_id).status == "retired"

    server.stop()  # the external CA goes away: a clear 503-class error, nothing changes
    with pytest.raises(Unavailable, match="could not be used"):
        registration.check_status(pki.pki, row.serial, "test")
