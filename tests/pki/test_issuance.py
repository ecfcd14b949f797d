"""Issuance from CSRs and with keystore-generated keys; what is refused and why."""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier
from sqlalchemy import func, select

from core import audit
from core.db import transaction
from hsm import KeyType
from pki import issuance
from pki.errors import BadCSR, SubjectInvalid, WeakKey
from pki.models import Certificate, Credential
from policies.errors import UnknownProfile, UnknownUnit
from tests import factories

DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def _issue(pki, **kw):
    kw.setdefault("profile", "specialist")
    kw.setdefault("subject", factories.specialist())
    kw.setdefault("commune_code", "00004")
    return issuance.issue(pki.pki, issuance.IssueRequest(**kw), "test")


def test_keygen_issuance_binds_a_credential_and_fills_the_commune(pki):
    result = _issue(pki)
    cert = x509.load_der_x509_certificate(result.certificate.der)
    assert result.credential_id.startswith("cred_") and result.key_ref.startswith("soft:")
    subject = {a.oid: a.value for a in cert.subject}
    assert subject[NameOID.COMMON_NAME] == "Nguyễn Thị Hoa"
    assert subject[NameOID.LOCALITY_NAME] == "Phường Ba Đình"
    assert subject[NameOID.STATE_OR_PROVINCE_NAME] == "Thành phố Hà Nội"
    assert subject[NameOID.ORGANIZATION_NAME] == "Ủy ban nhân dân Phường Ba Đình"
    assert subject[NameOID.SERIAL_NUMBER] == "IDCVN-001190000001"
    assert subject[NameOID.TITLE] == "Công chức Tư pháp - Hộ tịch"
    # Vietnamese text is UTF8String (tag 12), C is PrintableString (tag 19)
    tags = {a.oid: a._type.value for a in cert.subject}
    assert tags[NameOID.COMMON_NAME] == 12 and tags[NameOID.COUNTRY_NAME] == 19
    assert cert.public_key().public_numbers() == pki.pki.keystores.for_ref(result.key_ref).public_key(result.key_ref).public_numbers()
    with transaction(pki.sessions) as session:
        cred = session.get(Credential, result.credential_id)
        assert cred.certificate_id == result.certificate.id and cred.status == "active"


def test_specialist_extensions(pki):
    cert = x509.load_der_x509_certificate(_issue(pki).certificate.der)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment and not ku.value.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        DOCUMENT_SIGNING, x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION]
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_method: d.access_location.value for d in aia}
    base = pki.settings.base_url
    assert urls[x509.oid.AuthorityInformationAccessOID.OCSP] == f"{base}/ocsp"
    assert urls[x509.oid.AuthorityInformationAccessOID.CA_ISSUERS] == f"{base}/ca/test-issuing.crt"
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == f"{base}/crl/test-issuing.crl"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_serials_are_positive_random_and_large(pki):
    serials = [x509.load_der_x509_certificate(_issue(pki, subject=factories.specialist(id_number=f"00119000000{i}")).certificate.der).serial_number
               for i in range(5)]
    assert len(set(serials)) == 5
    assert all(s > 0 and s.bit_length() > 64 for s in serials)


def test_csr_issuance_has_no_credential(pki):
    csr, key = factories.csr_pem()
    result = _issue(pki, csr=csr)
    assert result.credential_id is None and result.key_ref is None
    cert = x509.load_der_x509_certificate(result.certificate.der)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_rsa_key_generation(pki):
    result = _issue(pki, key_type=KeyType.RSA_2048)
    assert x509.load_der_x509_certificate(result.certificate.der).public_key().key_size == 2048


def test_an_ed25519_key_cannot_hold_a_certificate_and_none_is_made(pki):
    """Ed25519 keys exist for log checkpoints; a certificate key of that type is refused up front."""
    store = pki.pki.keystores.get()
    keys_before = {k.ref for k in store.list()}
    with pytest.raises(WeakKey, match="ed25519"):
        _issue(pki, key_type=KeyType.ED25519)
    assert {k.ref for k in store.list()} == keys_before


@pytest.mark.parametrize("bad,error,words", [
    (factories.weak_rsa_csr, WeakKey, "at least 2048"),
    (factories.secp256k1_csr, WeakKey, "secp256k1"),
    (lambda: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", BadCSR, "PKCS#10"),
    (lambda: b"\x30\x03\x02\x01\x01", BadCSR, "PKCS#10"),
])
def test_bad_csrs_are_refused_and_nothing_is_written(pki, bad, error, words):
    with transaction(pki.sessions) as session:
        before = session.execute(select(func.count()).select_from(Certificate)).scalar_one()
    with pytest.raises(error, match=words):
        _issue(pki, csr=bad())
    with transaction(pki.sessions) as session:
        assert session.execute(select(func.count()).select_from(Certificate)).scalar_one() == before


def test_tampered_csr_signature_is_refused(pki):
    from cryptography.hazmat.primitives.serialization import Encoding

    csr_pem, _ = factories.csr_pem(cn="Lê Văn An")
    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(Encoding.DER))
    der[-5] ^= 0x01  # flip a bit inside the signature
    with pytest.raises(BadCSR, match="self-signature|signature"):
        _issue(pki, csr=bytes(der))


def test_unknown_commune_and_profile(pki):
    with pytest.raises(UnknownUnit, match="99999"):
        _issue(pki, commune_code="99999")
    with pytest.raises(UnknownProfile, match="known:"):
        _issue(pki, profile="nonexistent")
    with pytest.raises(SubjectInvalid, match="commune_code"):
        _issue(pki, commune_code=None)
    with pytest.raises(SubjectInvalid, match="for CAs"):
        _issue(pki, profile="issuing-ca")


def test_failed_issuance_leaves_no_key_and_no_row(pki, monkeypatch):
    """Fault injection: the audit write fails after signing; the certificate and key must vanish."""
    store = pki.pki.keystores.get()
    keys_before = {k.ref for k in store.list()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "record", boom)
    with pytest.raises(RuntimeError):
        _issue(pki)
    monkeypatch.undo()
    assert {k.ref for k in store.list()} == keys_before
    with transaction(pki.sessions) as session:
        assert session.execute(select(func.count()).select_from(Credential)).scalar_one() == 0
        assert audit.verify(session).ok


def test_every_issuance_is_audited(pki):
    result = _issue(pki)
    with transaction(pki.sessions) as session:
        entries = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.subject == result.certificate.serial)).scalars().all()
        assert [e.action for e in entries] == ["pki:certificate:issue"]
        assert "Nguyễn Thị Hoa" in entries[0].details


def test_renew_same_key_keeps_credential(pki):
    first = _issue(pki)
    renewed = issuance.renew(pki.pki, first.certificate.serial, "test")
    assert renewed.credential_id == first.credential_id
    old = x509.load_der_x509_certificate(first.certificate.der)
    new = x509.load_der_x509_certificate(renewed.certificate.der)
    assert new.public_key().public_numbers() == old.public_key().public_numbers()
    assert new.subject == old.subject and new.serial_number != old.serial_number
    with transaction(pki.sessions) as session:
        rows = {r.serial: r for r in session.execute(select(Certificate)).scalars()}
        assert rows[first.certificate.serial].status == "valid"  # same-key renewal overlaps
        assert rows[renewed.certificate.serial].replaces_serial == first.certificate.serial


def test_renew_new_key_supersedes(pki):
    first = _issue(pki)
    renewed = issuance.renew(pki.pki, first.certificate.serial, "test", new_key=True)
    assert renewed.credential_id != first.credential_id and renewed.key_ref != first.key_ref
    with transaction(pki.sessions) as session:
        old = session.execute(select(Certificate).where(Certificate.serial == first.certificate.serial)).scalar_one()
        assert (old.status, old.revocation_reason) == ("revoked", "superseded")
        assert session.get(Credential, first.credential_id).status == "retired"
