"""kyso's RFC 3161 / RFC 5816 time-stamping authority: token fields, rejections, the /tsa route,
pyHanko accepting our tokens, and the TSA certificate's life cycle (ensure, renew)."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib

import pytest
from asn1crypto import cms, crl as asn1_crl, tsp, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select

from api.scheduler import republish_once
from core import audit, clock
from core.db import transaction
from core.errors import Unavailable
from pki import crl, revocation, store
from pki.authorities import ensure_tsa, init_hierarchy
from pki.models import Certificate
from pki.reasons import Reason
from signing.create.timestamping import LocalTimeStamper, TimestampAuthority, TimeStampResp, timestamper_for
from tests.helpers.db import ISSUING, ROOT

DATA = "Giấy khai sinh số 123/2025".encode()
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"


def _request(data: bytes = DATA, *, algorithm: str = "sha256", nonce: int | None = 0x1234_5678_9ABC_DEF0,
             cert_req: bool = True, policy: str | None = None, imprint: bytes | None = None) -> bytes:
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm},
                            "hashed_message": imprint if imprint is not None else hashlib.new(algorithm, data).digest()},
        "cert_req": cert_req,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    return tsp.TimeStampReq(fields).dump()


def _tsa_row(pki) -> Certificate:  # type: ignore[no-untyped-def]
    with transaction(pki.sessions) as session:
        return store.current_tsa(session)


def _granted(der: bytes) -> tuple[cms.SignedData, tsp.TSTInfo]:
    response = tsp.TimeStampResp.load(der)
    assert response["status"]["status"].native == "granted", response["status"].native
    signed_data = response["time_stamp_token"]["content"]
    return signed_data, signed_data["encap_content_info"]["content"].parsed


def _embedded(signed_data: cms.SignedData) -> list[bytes]:
    """The certificates in a token (a SET OF: DER sorts them, so their order says nothing)."""
    return [choice.chosen.dump() for choice in signed_data["certificates"]]


def _rejected(der: bytes) -> tuple[set[str], str]:
    response = TimeStampResp.load(der)  # asn1crypto's own class cannot read a response without a token
    status = response["status"]
    assert status["status"].native == "rejection", status.native
    assert response["time_stamp_token"].native is None
    return set(status["fail_info"].native or ()), " ".join(status["status_string"].native or ())


# --- the token -----------------------------------------------------------------------------------

def test_token_fields_and_rfc5816_signing_certificate(pki) -> None:  # type: ignore[no-untyped-def]
    tsa = _tsa_row(pki)
    signed_data, info = _granted(pki.signing.tsa.respond(_request()))

    assert signed_data["version"].native == "v3"
    assert signed_data["encap_content_info"]["content_type"].dotted == ID_CT_TST_INFO
    assert info["version"].native == "v1"
    assert info["policy"].dotted == pki.settings.tsa_policy_oid
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(DATA).digest()
    assert info["nonce"].native == 0x1234_5678_9ABC_DEF0
    assert 0 < info["serial_number"].native < 2**128
    assert info["accuracy"]["seconds"].native == 1
    assert info["ordering"].native is False
    assert info["gen_time"].native.tzinfo is not None
    tsa_cert = x509.load_der_x509_certificate(tsa.der)
    assert info["tsa"].chosen.native == asn1_x509.Name.load(tsa_cert.subject.public_bytes()).native

    # certReq: the TSA certificate and its issuing CA, not the root (the relying party has it)
    embedded = {x509.load_der_x509_certificate(der).subject for der in _embedded(signed_data)}
    assert tsa.der in _embedded(signed_data) and embedded == {tsa_cert.subject, tsa_cert.issuer}

    signer_info = signed_data["signer_infos"][0]
    sid = signer_info["sid"].chosen
    assert sid["serial_number"].native == tsa_cert.serial_number
    attrs = signer_info["signed_attrs"]
    assert find_unique_cms_attribute(attrs, "content_type").native == "tst_info"
    tst_der = signed_data["encap_content_info"]["content"].contents
    assert find_unique_cms_attribute(attrs, "message_digest").native == hashlib.sha256(tst_der).digest()
    assert find_unique_cms_attribute(attrs, "signing_time").native == info["gen_time"].native

    ess = find_unique_cms_attribute(attrs, "signing_certificate_v2")["certs"][0]
    assert ess["hash_algorithm"]["algorithm"].native == "sha256"
    assert ess["cert_hash"].native == hashlib.sha256(tsa.der).digest()
    assert ess["issuer_serial"]["serial_number"].native == tsa_cert.serial_number
    assert ess["issuer_serial"]["issuer"][0].native == asn1_x509.Name.load(tsa_cert.issuer.public_bytes()).native

    # the signature covers the DER of the signed attributes as a SET (RFC 5652 5.4)
    signed = b"\x31" + attrs.dump()[1:]
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    public_key = tsa_cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signer_info["signature"].native, signed, ec.ECDSA(hashes.SHA256()))


def test_requested_policy_certreq_and_nonce_are_honoured(pki) -> None:  # type: ignore[no-untyped-def]
    authority = pki.signing.tsa
    signed_data, info = _granted(authority.respond(_request(policy=pki.settings.tsa_policy_oid, nonce=None,
                                                            cert_req=False, algorithm="sha512")))
    assert info["policy"].dotted == pki.settings.tsa_policy_oid
    assert info["nonce"].native is None
    assert signed_data["certificates"].native is None
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha512"

    first, second = (_granted(authority.respond(_request()))[1]["serial_number"].native for _ in range(2))
    assert first != second


@pytest.mark.parametrize("algorithm", ["md5", "sha224", "sha3_256"])
def test_unaccepted_hash_algorithm_is_rejected_with_bad_alg(pki, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    fail_info, text = _rejected(pki.signing.tsa.respond(_request(algorithm=algorithm)))
    assert fail_info == {"bad_alg"}
    assert algorithm in text and "sha256" in text


@pytest.mark.parametrize("der", [
    b"",
    b"garbage, not DER",
    b"\x30\x03\x02\x01",  # truncated
    _request()[:-3],
    tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x00" * 20}}).dump(),  # wrong length
    tsp.TimeStampReq({"version": 2, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x00" * 32}}).dump(),  # version 2
], ids=["empty", "garbage", "truncated-header", "truncated-request", "sha256-imprint-of-20-bytes", "version-2"])
def test_malformed_requests_get_a_bad_data_format_rejection(pki, der: bytes) -> None:  # type: ignore[no-untyped-def]
    fail_info, _ = _rejected(pki.signing.tsa.respond(der))
    assert fail_info == {"bad_data_format"}


def test_other_policy_and_extensions_are_rejected(pki) -> None:  # type: ignore[no-untyped-def]
    authority = pki.signing.tsa
    assert _rejected(authority.respond(_request(policy="1.2.3.4")))[0] == {"unaccepted_policy"}
    with_extension = tsp.TimeStampReq.load(_request())
    with_extension["extensions"] = [{"extn_id": "1.2.3.4.5", "critical": False, "extn_value": b"\x05\x00"}]
    assert _rejected(authority.respond(with_extension.dump()))[0] == {"unaccepted_extensions"}


# --- the HTTP route ------------------------------------------------------------------------------

def test_route_answers_timestamp_queries(client, pki) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/tsa", content=_request(), headers={"Content-Type": "application/timestamp-query"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/timestamp-reply"
    _, info = _granted(response.content)
    assert info["nonce"].native == 0x1234_5678_9ABC_DEF0

    garbage = client.post("/tsa", content=b"\x01\x02", headers={"Content-Type": "application/timestamp-query"})
    assert garbage.status_code == 200 and _rejected(garbage.content)[0] == {"bad_data_format"}


def test_route_refuses_wrong_media_type_and_large_bodies(client) -> None:  # type: ignore[no-untyped-def]
    wrong = client.post("/tsa", content=_request(), headers={"Content-Type": "application/octet-stream"})
    assert wrong.status_code == 415 and wrong.json()["error"]["code"] == "unsupported_media_type"
    big = client.post("/tsa", content=b"\x30" * 10_001, headers={"Content-Type": "application/timestamp-query"})
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"


def test_route_without_a_tsa_certificate_is_503(client, pki) -> None:  # type: ignore[no-untyped-def]
    revocation.revoke(pki.pki, _tsa_row(pki).serial, Reason.keyCompromise, "test")
    pki.signing.tsa.refresh()
    response = client.post("/tsa", content=_request(), headers={"Content-Type": "application/timestamp-query"})
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "tsa_not_ready" and "kyso ca init" in body["message"]


def test_route_is_documented_in_openapi(client) -> None:  # type: ignore[no-untyped-def]
    operation = client.get("/openapi.json").json()["paths"]["/tsa"]["post"]
    assert operation["summary"].startswith("Time-stamping")
    assert "application/timestamp-reply" in operation["responses"]["200"]["content"]
    assert "application/timestamp-query" in operation["requestBody"]["content"]


# --- pyHanko -------------------------------------------------------------------------------------

def _validation_context(pki) -> ValidationContext:  # type: ignore[no-untyped-def]
    """Trusting our root only, with our full and delta CRLs given up front (no fetching), and
    revocation information *required* for every certificate below the root."""
    with transaction(pki.sessions) as session:
        root_der = store.get_ca(session, "test-root").cert_der
        crls = [crl.latest(session, store.get_ca(session, name), delta=delta).der
                for name in ("test-root", "test-issuing") for delta in (False, True)]
    return ValidationContext(trust_roots=[asn1_x509.Certificate.load(root_der)],
                             crls=[asn1_crl.CertificateList.load(der) for der in crls],
                             allow_fetching=False, revocation_mode="require")


def test_pyhanko_validates_a_local_timestamper_token(pki) -> None:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256(DATA).digest()
    stamper = pki.signing.timestamper()
    assert isinstance(stamper, LocalTimeStamper)

    async def stamp_and_validate() -> dict[str, object]:
        token = await stamper.async_timestamp(digest, "sha256")
        return await validate_tst_signed_data(token["content"], _validation_context(pki),
                                              expected_tst_imprint=lambda _algorithm: digest)

    status = asyncio.run(stamp_and_validate())
    assert status["intact"] and status["valid"], status
    assert status["trust_problem_indic"] is None, status
    assert status["signing_cert"].sha256 == hashlib.sha256(_tsa_row(pki).der).digest()


def test_timestamper_for_uses_the_external_tsa_when_configured(pki) -> None:  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    settings = pki.settings.model_copy(update={"tsa_url": "https://tsa.example.test/tsr", "tsa_username": "kyso",
                                               "tsa_password": SecretStr("s3cret"), "tsa_timeout_seconds": 2.5})
    ctx = type(pki.pki)(settings=settings, sessions=pki.pki.sessions, keystores=pki.pki.keystores,
                        profiles=pki.pki.profiles)
    stamper = timestamper_for(ctx)
    assert isinstance(stamper, HTTPTimeStamper)
    assert stamper.url == "https://tsa.example.test/tsr" and stamper.timeout == 2.5
    headers = stamper.request_headers()
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"kyso:s3cret").decode()
    assert headers["Content-Type"] == "application/timestamp-query"


def test_authority_is_owned_by_the_signing_service(pki) -> None:  # type: ignore[no-untyped-def]
    authority = pki.signing.tsa
    assert isinstance(authority, TimestampAuthority) and pki.signing.timestamper().authority is authority
    assert authority.certificate().serial_number == int(_tsa_row(pki).serial, 16)


# --- the TSA certificate's life cycle -----------------------------------------------------------

def _tsa_audit(pki, action: str) -> int:  # type: ignore[no-untyped-def]
    with transaction(pki.sessions) as session:
        return len(session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == action)).scalars().all())


def _tsa_rows(pki) -> list[Certificate]:  # type: ignore[no-untyped-def]
    with transaction(pki.sessions) as session:
        return list(session.execute(select(Certificate).where(Certificate.profile == "tsa")
                                    .order_by(Certificate.id)).scalars())


def test_hierarchy_has_a_tsa_certificate_with_the_tsa_profile(pki) -> None:  # type: ignore[no-untyped-def]
    tsa = _tsa_row(pki)
    cert = x509.load_der_x509_certificate(tsa.der)
    assert tsa.key_ref and tsa.ca.name == "test-issuing"
    assert cert.subject.rfc4514_string() == "CN=TSA kyso Test Issuing CA,O=kyso thử nghiệm,C=VN"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]
    assert _tsa_audit(pki, "pki:tsa:issue") == 1


def test_ensure_tsa_is_idempotent_and_replaces_a_revoked_one(pki) -> None:  # type: ignore[no-untyped-def]
    first = _tsa_row(pki)
    assert ensure_tsa(pki.pki, "test").serial == first.serial
    assert ensure_tsa(pki.pki, "test", ca_name="test-issuing").serial == first.serial
    assert len(_tsa_rows(pki)) == 1 and _tsa_audit(pki, "pki:tsa:issue") == 1

    revocation.revoke(pki.pki, first.serial, Reason.keyCompromise, "test")
    with transaction(pki.sessions) as session, pytest.raises(Unavailable, match="kyso ca init"):
        store.current_tsa(session)
    second = ensure_tsa(pki.pki, "test")
    assert second.serial != first.serial and second.key_ref != first.key_ref
    assert ensure_tsa(pki.pki, "test").serial == second.serial
    assert _tsa_audit(pki, "pki:tsa:issue") == 2


def test_ca_init_adds_a_missing_tsa_to_an_existing_hierarchy(pki) -> None:  # type: ignore[no-untyped-def]
    again = init_hierarchy(pki.pki, root=ROOT, issuing=ISSUING, actor="test")
    assert again.created == [] and again.tsa_serial is None  # already there: nothing new

    revocation.revoke(pki.pki, _tsa_row(pki).serial, Reason.cessationOfOperation, "test")  # "an old deployment"
    upgraded = init_hierarchy(pki.pki, root=ROOT, issuing=ISSUING, actor="test")
    assert upgraded.created == [] and upgraded.tsa_serial == _tsa_row(pki).serial


def test_tsa_certificate_is_renewed_30_days_before_expiry(pki) -> None:  # type: ignore[no-untyped-def]
    old = _tsa_row(pki)
    assert "tsa" not in republish_once(pki)
    later = old.not_after - dt.timedelta(days=20)
    clock.set_clock(lambda: later)
    try:
        result = republish_once(pki)
        assert result["tsa"] == 1
        assert "tsa" not in republish_once(pki)  # the new certificate is far from expiry
        with transaction(pki.sessions) as session:
            new = store.current_tsa(session)
        assert new.serial != old.serial and new.replaces_serial == old.serial and new.key_ref != old.key_ref
        assert new.not_after > later + dt.timedelta(days=1000)
        assert [r.status for r in _tsa_rows(pki)] == ["valid", "valid"]  # old tokens stay verifiable
        assert _tsa_audit(pki, "pki:tsa:renew") == 1

        authority = pki.signing.tsa
        authority.refresh()
        signed_data, _ = _granted(authority.respond(_request()))
        assert new.der in _embedded(signed_data)
    finally:
        clock.set_clock(None)


def test_rsa_tsa_signs_with_pkcs1v15_sha256(pki) -> None:  # type: ignore[no-untyped-def]
    """A TSA key of another type (RSA here) is honoured: the signature algorithm follows the key."""
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from hsm import KeyType
    from pki import issuance
    from pki.names import SubjectInfo

    result = issuance.issue(pki.pki, issuance.IssueRequest(
        profile="tsa", subject=SubjectInfo(common_name="kyso TSA RSA", organization="kyso thử nghiệm"),
        key_type=KeyType.RSA_2048), "test")
    authority = pki.signing.tsa
    authority.refresh()
    signed_data, _ = _granted(authority.respond(_request()))
    assert result.certificate.der in _embedded(signed_data)
    signer_info = signed_data["signer_infos"][0]
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha256_rsa"
    public_key = x509.load_der_x509_certificate(result.certificate.der).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signer_info["signature"].native, b"\x31" + signer_info["signed_attrs"].dump()[1:],
                      padding.PKCS1v15(), hashes.SHA256())

