"""Revocation, hold and release: the CRLs and OCSP responses always agree with the database."""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x_ocsp
from sqlalchemy import func, select

from core import audit
from core.db import transaction
from core.errors import InvalidInput
from pki import crl, issuance, ocsp, revocation, store
from pki.errors import RevocationConflict, UnknownCertificate
from pki.reasons import Reason, resolve_reason
from tests import factories


def _issue(pki, n="001190000001"):
    return issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(id_number=n),
                                                         commune_code="00004"), "test").certificate


def _crls(pki):
    with transaction(pki.sessions) as session:
        ca = store.get_ca(session, "test-issuing")
        full, delta = crl.latest(session, ca, delta=False), crl.latest(session, ca, delta=True)
        issuer = x509.load_der_x509_certificate(ca.cert_der)
        return x509.load_der_x509_crl(full.der), x509.load_der_x509_crl(delta.der), issuer


def _ocsp(pki, row, nonce: bytes | None = None):
    with transaction(pki.sessions) as session:
        ca = store.get_ca(session, "test-issuing")
        issuer = x509.load_der_x509_certificate(ca.cert_der)
        builder = x_ocsp.OCSPRequestBuilder().add_certificate(x509.load_der_x509_certificate(row.der), issuer, hashes.SHA1())
        if nonce:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        answer = ocsp.answer(pki.pki, session, builder.build().public_bytes(serialization.Encoding.DER))
    return answer, x_ocsp.load_der_ocsp_response(answer.der)


def _number(c):
    return c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


@pytest.mark.parametrize("reason", [r for r in Reason if r is not Reason.certificateHold])
def test_revoke_with_every_reason(pki, reason):
    row = _issue(pki)
    full_before, _, _ = _crls(pki)
    revocation.revoke(pki.pki, row.serial, reason, "test")
    full, delta, issuer = _crls(pki)
    assert full.is_signature_valid(issuer.public_key()) and delta.is_signature_valid(issuer.public_key())
    assert _number(full) > _number(full_before) and _number(delta) == _number(full) + 1
    entry = full.get_revoked_certificate_by_serial_number(int(row.serial, 16))
    assert entry is not None
    assert delta.get_revoked_certificate_by_serial_number(int(row.serial, 16)) is not None
    if reason is Reason.unspecified:
        assert not any(isinstance(e.value, x509.CRLReason) for e in entry.extensions)
    else:
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is reason.flag
    answer, response = _ocsp(pki, row)
    assert response.certificate_status is x_ocsp.OCSPCertStatus.REVOKED
    assert answer.pre_produced
    if reason is not Reason.unspecified:
        assert response.revocation_reason is reason.flag


def test_hold_then_release_shows_remove_from_crl(pki):
    row = _issue(pki)
    revocation.revoke(pki.pki, row.serial, Reason.certificateHold, "test")
    full, _, _ = _crls(pki)
    assert full.get_revoked_certificate_by_serial_number(int(row.serial, 16)) is not None
    assert _ocsp(pki, row)[1].certificate_status is x_ocsp.OCSPCertStatus.REVOKED
    with pytest.raises(RevocationConflict, match="already on hold"):
        revocation.revoke(pki.pki, row.serial, Reason.certificateHold, "test")
    revocation.release(pki.pki, row.serial, "test")
    full, delta, _ = _crls(pki)
    assert full.get_revoked_certificate_by_serial_number(int(row.serial, 16)) is None
    entry = delta.get_revoked_certificate_by_serial_number(int(row.serial, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.remove_from_crl
    assert delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == _number(full)
    assert _ocsp(pki, row)[1].certificate_status is x_ocsp.OCSPCertStatus.GOOD
    with pytest.raises(RevocationConflict, match="not on hold"):
        revocation.release(pki.pki, row.serial, "test")


def test_hold_can_become_a_revocation(pki):
    row = _issue(pki)
    revocation.revoke(pki.pki, row.serial, Reason.certificateHold, "test")
    revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "test")
    _, response = _ocsp(pki, row)
    assert response.revocation_reason is x509.ReasonFlags.key_compromise


def test_double_revocation_is_refused_and_changes_nothing(pki):
    row = _issue(pki)
    revocation.revoke(pki.pki, row.serial, Reason.affiliationChanged, "test")
    with transaction(pki.sessions) as session:
        entries = audit.verify(session).entries
        crl_number = store.get_ca(session, "test-issuing").next_crl_number
    with pytest.raises(RevocationConflict, match="already revoked"):
        revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "test")
    with transaction(pki.sessions) as session:
        assert audit.verify(session).entries == entries
        assert store.get_ca(session, "test-issuing").next_crl_number == crl_number
        assert store.get_certificate(session, row.serial).revocation_reason == "affiliationChanged"


def test_unknown_serial(pki):
    with pytest.raises(UnknownCertificate):
        revocation.revoke(pki.pki, "ABCDEF", Reason.keyCompromise, "test")
    with pytest.raises(UnknownCertificate, match="not a certificate serial"):
        revocation.revoke(pki.pki, "xyz; drop table", Reason.keyCompromise, "test")


def test_serial_spelled_with_colons_and_lower_case(pki):
    row = _issue(pki)
    spelled = ":".join(row.serial[i:i + 2] for i in range(0, len(row.serial), 2)).lower()
    revocation.revoke(pki.pki, spelled, Reason.superseded, "test")


def test_legal_grounds_map_to_rfc5280_reasons():
    assert resolve_reason(None, "officer_moved") is Reason.affiliationChanged
    assert resolve_reason(None, "officer_retired") is Reason.affiliationChanged
    assert resolve_reason(None, "unit_merged") is Reason.cessationOfOperation
    assert resolve_reason(None, "key_replaced") is Reason.superseded
    assert resolve_reason(None, "key_lost") is Reason.keyCompromise
    assert resolve_reason("keyCompromise", "key_exposed") is Reason.keyCompromise
    with pytest.raises(InvalidInput, match="contradicts"):
        resolve_reason("superseded", "key_lost")
    with pytest.raises(InvalidInput, match="unknown"):
        resolve_reason("stolen", None)


def test_ocsp_nonce_is_echoed_and_signed_on_demand(pki):
    row = _issue(pki)
    answer, response = _ocsp(pki, row, nonce=b"0123456789abcdef")
    assert not answer.pre_produced
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    with transaction(pki.sessions) as session:
        responder = store.get_certificate(session, store.get_ca(session, "test-issuing").ocsp_responder_serial)
    responder_cert = x509.load_der_x509_certificate(responder.der)
    assert response.certificates[0] == responder_cert
    from cryptography.hazmat.primitives.asymmetric import ec

    responder_cert.public_key().verify(response.signature, response.tbs_response_bytes,
                                       ec.ECDSA(response.signature_hash_algorithm))


def test_ocsp_unknown_and_unauthorized(pki):
    row = _issue(pki)
    with transaction(pki.sessions) as session:
        issuer = x509.load_der_x509_certificate(store.get_ca(session, "test-issuing").cert_der)
        name_hash, key_hash = ocsp.issuer_hashes(issuer, hashes.SHA1())
        req = x_ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, 12345, hashes.SHA1()).build()
        answer = ocsp.answer(pki.pki, session, req.public_bytes(serialization.Encoding.DER))
        assert x_ocsp.load_der_ocsp_response(answer.der).certificate_status is x_ocsp.OCSPCertStatus.UNKNOWN
        other = x_ocsp.OCSPRequestBuilder().add_certificate_by_hash(b"\1" * 20, b"\2" * 20, 1, hashes.SHA1()).build()
        answer = ocsp.answer(pki.pki, session, other.public_bytes(serialization.Encoding.DER))
        assert x_ocsp.load_der_ocsp_response(answer.der).response_status is x_ocsp.OCSPResponseStatus.UNAUTHORIZED
        garbage = ocsp.answer(pki.pki, session, b"\x30\x02\x05\x00")
        assert x_ocsp.load_der_ocsp_response(garbage.der).response_status is x_ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert row


def test_sha256_certid_is_answered(pki):
    row = _issue(pki)
    with transaction(pki.sessions) as session:
        issuer = x509.load_der_x509_certificate(store.get_ca(session, "test-issuing").cert_der)
        req = x_ocsp.OCSPRequestBuilder().add_certificate(x509.load_der_x509_certificate(row.der), issuer, hashes.SHA256()).build()
        answer = ocsp.answer(pki.pki, session, req.public_bytes(serialization.Encoding.DER))
    response = x_ocsp.load_der_ocsp_response(answer.der)
    assert response.certificate_status is x_ocsp.OCSPCertStatus.GOOD
    assert response.issuer_key_hash == req.issuer_key_hash and not answer.pre_produced


def test_crl_numbers_only_go_up(pki):
    numbers = []
    for i in range(3):
        row = _issue(pki, n=f"00119000000{i}")
        revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "test")
        full, delta, _ = _crls(pki)
        numbers += [_number(full), _number(delta)]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    with transaction(pki.sessions) as session:
        from pki.models import Crl
        assert session.execute(select(func.count()).select_from(Crl)).scalar_one() >= 6


def test_revocation_that_cannot_be_published_does_not_happen(pki, monkeypatch):
    """Fault injection: CRL signing fails; the status, OCSP answer and audit log stay as they were."""
    row = _issue(pki)
    with transaction(pki.sessions) as session:
        entries = audit.verify(session).entries

    def broken(*args, **kwargs):
        raise RuntimeError("keystore went away mid-revocation")

    monkeypatch.setattr(crl, "publish_both", broken)
    with pytest.raises(RuntimeError):
        revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "test")
    monkeypatch.undo()
    with transaction(pki.sessions) as session:
        assert store.get_certificate(session, row.serial).status == "valid"
        assert audit.verify(session).entries == entries
    assert _ocsp(pki, row)[1].certificate_status is x_ocsp.OCSPCertStatus.GOOD
