"""DER protocol requests and CSRs from a hostile client: OCSP (POST and GET), time-stamping and certificate
issuance from a CSR answer with the protocol's own refusal or a clear 4xx, never a 500.

RFC 6960 2.3 / 4.2.1: a request the responder cannot parse gets an OCSPResponse with status
malformedRequest (no responseBytes), sent with HTTP 200; RFC 3161 2.4.2: a TimeStampReq the TSA cannot
grant gets a TimeStampResp with status rejection and a failInfo, also with HTTP 200. The transport's own
refusals (wrong content type 415, too large 413) are kyso's JSON errors.
"""
from __future__ import annotations

import base64
import os
import time
from urllib.parse import quote

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, Phase, event, given, settings, strategies as st

from core.db import transaction
from pki import store
from signing.create.timestamping import TimeStampResp
from tests.helpers.hostile import Kyso, assert_refused_clearly

from .strategies import hostile_bytes, mutated, ocsp_requests, tsa_queries

EXAMPLES = int(os.environ.get("KYSO_HOSTILE_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
OCSP_STATUSES = {ocsp.OCSPResponseStatus.SUCCESSFUL, ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                 ocsp.OCSPResponseStatus.UNAUTHORIZED, ocsp.OCSPResponseStatus.TRY_LATER}


@pytest.fixture(scope="module")
def real_ocsp_requests(kyso: Kyso) -> list[bytes]:
    """Requests for the specialist's certificate: SHA-1 and SHA-256 CertIDs, with and without a nonce."""
    with transaction(kyso.container.sessions) as session:
        cas = {ca.id: ca for ca in store.list_cas(session)}
        row = next(c for c in store.list_certificates(session, store.CertificateFilter(limit=50), None)[0]
                   if c.profile == "specialist")
        cert = x509.load_der_x509_certificate(row.der)
        issuer = x509.load_der_x509_certificate(cas[row.ca_id].cert_der)
    out = []
    for algorithm in (hashes.SHA1(), hashes.SHA256()):
        for nonce in (None, b"\x01" * 16):
            builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm)
            if nonce:
                builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
            out.append(builder.build().public_bytes(serialization.Encoding.DER))
    return out


def _check_ocsp(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/ocsp-response"
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status in OCSP_STATUSES
    event(parsed.response_status.name)


@FUZZ
@given(data=st.data())
def test_ocsp_post_answers_every_request_in_the_protocol(kyso: Kyso, real_ocsp_requests: list[bytes],
                                                         data: st.DataObject) -> None:
    body = data.draw(ocsp_requests(*real_ocsp_requests))
    _check_ocsp(kyso.client.post("/ocsp", content=body, headers={"Content-Type": "application/ocsp-request"}))


@FUZZ
@given(data=st.data())
def test_ocsp_get_answers_every_request_in_the_protocol(kyso: Kyso, real_ocsp_requests: list[bytes],
                                                        data: st.DataObject) -> None:
    body = data.draw(ocsp_requests(*real_ocsp_requests))
    encoded = base64.b64encode(body).decode()
    path = data.draw(st.sampled_from([quote(encoded, safe=""), encoded, encoded.rstrip("=")]))
    if len(path) > 9000:
        return
    _check_ocsp(kyso.client.get(f"/ocsp/{path}"))


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(path=st.text(max_size=300))
def test_ocsp_get_with_any_path_is_never_a_500(kyso: Kyso, path: str) -> None:
    response = kyso.client.get("/ocsp/" + quote(path, safe="/"))
    assert response.status_code < 500, (response.status_code, response.text[:300])


def test_ocsp_transport_refusals_are_clear(kyso: Kyso, real_ocsp_requests: list[bytes]) -> None:
    assert_refused_clearly(kyso.client.post("/ocsp", content=real_ocsp_requests[0]), 415)
    assert_refused_clearly(kyso.client.post("/ocsp", content=b"\x30" * 20_000,
                                            headers={"Content-Type": "application/ocsp-request"}), 413)
    assert_refused_clearly(kyso.client.get("/ocsp/" + "A" * 12_000), 413, 414)


@FUZZ
@given(query=tsa_queries())
def test_tsa_answers_every_request_in_the_protocol(kyso: Kyso, query: bytes) -> None:
    response = kyso.client.post("/tsa", content=query, headers={"Content-Type": "application/timestamp-query"})
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/timestamp-reply"
    answer = TimeStampResp.load(response.content)
    status = answer["status"]["status"].native
    event(f"{status} {answer['status']['fail_info'].native}")
    assert status in ("granted", "rejection"), status
    if status == "rejection":
        assert answer["status"]["fail_info"].native and answer["status"]["status_string"].native
    else:
        request = tsp.TimeStampReq.load(query)  # granted: the request was well formed, the imprint echoed
        assert answer["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed[
            "message_imprint"].native == request["message_imprint"].native


def test_tsa_transport_refusals_are_clear(kyso: Kyso) -> None:
    assert_refused_clearly(kyso.client.post("/tsa", content=b"\x30\x00"), 415)
    assert_refused_clearly(kyso.client.post("/tsa", content=b"\x30" * 20_000,
                                            headers={"Content-Type": "application/timestamp-query"}), 413)


# -- certificate issuance from a CSR ------------------------------------------------------------------
def _csr_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Trần Văn Hùng")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER)


CSR = _csr_der()


def _pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


CSRS = st.one_of(
    hostile_bytes(CSR).map(_pem),  # mutated DER in a correct PEM wrapping: the parser sees the damage
    mutated(_pem(CSR).encode()).map(lambda b: b.decode("latin-1")),  # damaged PEM text
    st.text(max_size=500),
)


@settings(FUZZ, max_examples=max(1, EXAMPLES * 3 // 5))
@given(csr=CSRS)
def test_issuance_from_any_csr_issues_or_refuses_clearly(kyso: Kyso, csr: str) -> None:
    started = time.monotonic()
    response = kyso.client.post("/api/v1/certificates", headers=kyso.headers["ca-operator"], json={
        "profile": "specialist", "subject": {"common_name": "Trần Văn Hùng", "id_number": "001190000002"},
        "commune_code": "00004", "csr": csr})
    assert time.monotonic() - started < 20
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code != 201:
        event(assert_refused_clearly(response)["code"])
    else:
        event("issued")


def test_a_valid_csr_is_issued(kyso: Kyso) -> None:
    """The fuzzing above is not vacuous: the unmutated request goes through."""
    response = kyso.client.post("/api/v1/certificates", headers=kyso.headers["ca-operator"], json={
        "profile": "specialist", "subject": {"common_name": "Trần Văn Hùng", "id_number": "001190000002"},
        "commune_code": "00004", "csr": _pem(CSR)})
    assert response.status_code == 201, response.text


def _csr_with(key) -> str:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

    algorithm = None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])).sign(key, algorithm))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("kind", ["ed25519", "ed448", "secp256k1", "p521", "rsa1024", "dsa"])
def test_csr_with_a_key_kyso_does_not_issue_for_is_refused_clearly(kyso: Kyso, kind: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import dsa, ed448, ed25519, rsa

    key = {"ed25519": lambda: ed25519.Ed25519PrivateKey.generate(), "ed448": lambda: ed448.Ed448PrivateKey.generate(),
           "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
           "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
           "rsa1024": lambda: rsa.generate_private_key(65537, 1024),
           "dsa": lambda: dsa.generate_private_key(2048)}[kind]()
    response = kyso.client.post("/api/v1/certificates", headers=kyso.headers["ca-operator"], json={
        "profile": "specialist", "subject": {"common_name": "Trần Văn Hùng"}, "commune_code": "00004",
        "csr": _csr_with(key)})
    assert_refused_clearly(response, 400, 422)


def test_padded_ocsp_requests_do_not_fill_the_answer_cache(kyso: Kyso, real_ocsp_requests: list[bytes]) -> None:
    """Requests made unique by padding (here: an unknown extension of growing size) for a known certificate
    get the pre-produced answer, but are not kept: the cache stays bounded by certificates, not requests."""
    with transaction(kyso.container.sessions) as session:
        cas = {ca.id: ca for ca in store.list_cas(session)}
        row = next(c for c in store.list_certificates(session, store.CertificateFilter(limit=50), None)[0]
                   if c.profile == "specialist")
        cert = x509.load_der_x509_certificate(row.der)
        issuer = x509.load_der_x509_certificate(cas[row.ca_id].cert_der)
    cache = kyso.container.pki.ocsp_cache
    before = len(cache._entries)
    for size in range(600, 9000, 400):
        padded = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
                  .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"),
                                                            b"\x04\x82" + size.to_bytes(2, "big") + b"p" * size),
                                 critical=False)
                  .build().public_bytes(serialization.Encoding.DER))
        response = kyso.client.post("/ocsp", content=padded, headers={"Content-Type": "application/ocsp-request"})
        assert ocsp.load_der_ocsp_response(response.content).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert len(cache._entries) <= before + 1
