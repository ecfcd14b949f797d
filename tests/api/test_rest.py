"""The REST API end to end, and the errors it gives for bad input (4xx JSON, never 500)."""
from __future__ import annotations

from cryptography import x509

from tests import factories

SPECIALIST = {"profile": "specialist", "commune_code": "00004",
              "subject": {"common_name": "Nguyễn Thị Hoa", "title": "Công chức Tư pháp - Hộ tịch",
                          "id_number": "001190000001"}}


def _error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["message"]
    if code:
        assert body["code"] == code, body
    return body


def test_issue_list_show_export_revoke_renew(client, operator_headers):
    r = client.post("/api/v1/certificates", json=SPECIALIST, headers=operator_headers)
    assert r.status_code == 201, r.text
    issued = r.json()
    serial = issued["certificate"]["serial"]
    assert issued["credential_id"].startswith("cred_") and issued["key_ref"].startswith("soft:")
    cert = x509.load_pem_x509_certificate(issued["certificate"]["pem"].encode())
    assert format(cert.serial_number, "X") == serial

    listing = client.get("/api/v1/certificates", params={"commune": "00004", "status": "valid"}, headers=operator_headers).json()
    assert listing["total"] == 1 and listing["items"][0]["serial"] == serial
    assert client.get("/api/v1/certificates", params={"subject": "Nguyễn Thị"}, headers=operator_headers).json()["total"] == 1
    assert client.get("/api/v1/certificates", params={"commune": "00008"}, headers=operator_headers).json()["total"] == 0
    assert client.get("/api/v1/certificates", params={"expires_before": "2099-01-01T00:00:00"},
                      headers=operator_headers).json()["total"] >= 1

    der = client.get(f"/api/v1/certificates/{serial}", params={"format": "der"}, headers=operator_headers)
    assert der.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == cert
    pem = client.get(f"/api/v1/certificates/{serial}", params={"format": "pem"}, headers=operator_headers)
    assert x509.load_pem_x509_certificate(pem.content) == cert

    renewed = client.post(f"/api/v1/certificates/{serial}/renew", json={"new_key": True}, headers=operator_headers)
    assert renewed.status_code == 201, renewed.text
    new_serial = renewed.json()["certificate"]["serial"]
    old = client.get(f"/api/v1/certificates/{serial}", headers=operator_headers).json()
    assert old["status"] == "revoked" and old["revocation_reason"] == "superseded"

    r = client.post(f"/api/v1/certificates/{new_serial}/revoke", json={"ground": "officer_moved"}, headers=operator_headers)
    assert r.status_code == 200 and r.json()["revocation_reason"] == "affiliationChanged"
    _error(client.post(f"/api/v1/certificates/{new_serial}/revoke", json={"reason": "keyCompromise"},
                       headers=operator_headers), 409, "revocation_conflict")


def test_issue_from_csr_over_api(client, operator_headers):
    csr, _ = factories.csr_pem()
    body = {**SPECIALIST, "csr": csr.decode()}
    r = client.post("/api/v1/certificates", json=body, headers=operator_headers)
    assert r.status_code == 201 and r.json()["credential_id"] is None


def test_hold_and_release_over_api(client, operator_headers):
    serial = client.post("/api/v1/certificates", json=SPECIALIST, headers=operator_headers).json()["certificate"]["serial"]
    r = client.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "certificateHold"}, headers=operator_headers)
    assert r.json()["status"] == "on_hold"
    r = client.post(f"/api/v1/certificates/{serial}/release", headers=operator_headers)
    assert r.status_code == 200 and r.json()["status"] == "valid"


def test_merger_over_api(client, operator_headers):
    client.post("/api/v1/certificates", json=SPECIALIST, headers=operator_headers)
    body = {"from_codes": ["00004", "00008"], "into_code": "00025", "dry_run": True}
    r = client.post("/api/v1/mergers", json=body, headers=operator_headers)
    assert r.status_code == 200 and len(r.json()["changes"]) == 1 and r.json()["changes"][0]["new_serial"] is None
    r = client.post("/api/v1/mergers", json={**body, "dry_run": False}, headers=operator_headers)
    assert r.json()["changes"][0]["new_serial"]


def test_cas_units_and_crl_publication(client, operator_headers):
    cas = {c["name"]: c for c in client.get("/api/v1/cas", headers=operator_headers).json()}
    assert cas["test-issuing"]["parent"] == "test-root" and cas["test-issuing"]["crl_url"].endswith("/crl/test-issuing.crl")
    unit = client.get("/api/v1/units/00004", headers=operator_headers).json()
    assert unit["full_name"] == "Phường Ba Đình" and unit["province_code"] == "01"
    found = client.get("/api/v1/units", params={"q": "Giảng Võ"}, headers=operator_headers).json()
    assert [u["code"] for u in found] == ["00025"]
    r = client.post("/api/v1/cas/test-issuing/crl", headers=operator_headers)
    assert r.status_code == 200 and [c["is_delta"] for c in r.json()] == [False, True]
    chain = client.get("/api/v1/cas/test-issuing/chain.pem", headers=operator_headers).text
    assert chain.count("BEGIN CERTIFICATE") == 2


# -- bad input: clear 4xx JSON, nothing written ---------------------------------------------
def test_malformed_csr(client, operator_headers):
    body = _error(client.post("/api/v1/certificates", json={**SPECIALIST, "csr": "-----BEGIN CERTIFICATE REQUEST-----\nnope\n"
                                                                                 "-----END CERTIFICATE REQUEST-----"},
                              headers=operator_headers), 422, "bad_csr")
    assert "PKCS#10" in body["message"]


def test_weak_csr(client, operator_headers):
    _error(client.post("/api/v1/certificates", json={**SPECIALIST, "csr": factories.weak_rsa_csr().decode()},
                       headers=operator_headers), 422, "weak_key")


def test_unknown_things(client, operator_headers):
    _error(client.get("/api/v1/certificates/ABCDEF", headers=operator_headers), 404, "unknown_certificate")
    _error(client.get("/api/v1/certificates/not-hex", headers=operator_headers), 404, "unknown_certificate")
    _error(client.post("/api/v1/cas/nope/crl", headers=operator_headers), 404, "unknown_ca")
    _error(client.post("/api/v1/certificates", json={**SPECIALIST, "profile": "nope"}, headers=operator_headers), 404, "unknown_profile")
    _error(client.post("/api/v1/certificates", json={**SPECIALIST, "commune_code": "99999"}, headers=operator_headers), 422,
           "unknown_admin_unit")
    _error(client.get("/crl/nope.crl"), 404, "unknown_ca")
    _error(client.get("/ca/nope.crt"), 404, "unknown_ca")
    _error(client.get("/no/such/path"), 404)


def test_invalid_bodies(client, operator_headers):
    body = _error(client.post("/api/v1/certificates", content=b"{not json", headers={**operator_headers, "Content-Type": "application/json"}), 422)
    assert body["code"] == "invalid_request"
    body = _error(client.post("/api/v1/certificates", json={**SPECIALIST, "extra": 1}, headers=operator_headers), 422)
    assert "extra" in body["message"]
    _error(client.post("/api/v1/certificates", json={**SPECIALIST, "subject": {"common_name": "A", "id_number": "12"}},
                       headers=operator_headers), 422)
    _error(client.post("/api/v1/certificates/ABC/revoke", json={"reason": "stolen"}, headers=operator_headers), 422)


def test_oversize_body(client, operator_headers):
    huge = {**SPECIALIST, "csr": "A" * 2_000_000}
    body = _error(client.post("/api/v1/certificates", json=huge, headers=operator_headers), 413, "request_too_large")
    assert "bytes" in body["message"]


def test_ocsp_wrong_content_type_and_garbage(client):
    _error(client.post("/ocsp", content=b"\x30\x00", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")
    r = client.post("/ocsp", content=b"garbage", headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200 and r.content == bytes.fromhex("30030a0101")  # malformedRequest, as RFC 6960 says
    r = client.get("/ocsp/%%%not-base64")
    assert r.status_code == 200 and r.content == bytes.fromhex("30030a0101")


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/certificates" in spec["paths"] and "/ocsp" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_document_routes_take_pdf_sized_bodies(client):
    """Routes that carry PDFs get the PDF limit, not the 1 MiB JSON one: a 2 MB body reaches the route
    (which then refuses the missing token) instead of being cut off as too large."""
    two_mb = b"%PDF-1.7\n" + b"0" * 2_000_000
    for path in ("/api/v1/sign", "/api/v1/sign/batch", "/api/v1/sign/requests", "/api/v1/verify"):
        r = client.post(path, content=two_mb, headers={"Content-Type": "application/pdf"})
        assert r.status_code != 413, (path, r.text)
    _error(client.post("/api/v1/certificates", content=two_mb, headers={"Content-Type": "application/json"}),
           413, "request_too_large")


def test_certificates_name_their_credential(client, operator_headers):
    """An operator finds a specialist's credential id again from her certificate (list and show), and a
    certificate kyso holds no credential for (the CA's) says so with null."""
    issued = client.post("/api/v1/certificates", json=SPECIALIST, headers=operator_headers).json()
    serial, credential = issued["certificate"]["serial"], issued["credential_id"]
    assert issued["certificate"]["credential_id"] == credential
    listing = client.get("/api/v1/certificates", params={"commune": "00004"}, headers=operator_headers).json()
    assert [(i["serial"], i["credential_id"]) for i in listing["items"]] == [(serial, credential)]
    assert client.get(f"/api/v1/certificates/{serial}", headers=operator_headers).json()["credential_id"] == credential

    renewed = client.post(f"/api/v1/certificates/{serial}/renew", json={"new_key": False}, headers=operator_headers)
    assert renewed.status_code == 201, renewed.text
    new_serial = renewed.json()["certificate"]["serial"]
    assert renewed.json()["certificate"]["credential_id"] == credential
    # the superseded certificate still names the credential that held its key
    assert client.get(f"/api/v1/certificates/{serial}", headers=operator_headers).json()["credential_id"] == credential
    assert client.get(f"/api/v1/certificates/{new_serial}", headers=operator_headers).json()["credential_id"] == credential

    others = client.get("/api/v1/certificates", params={"profile": "tsa"}, headers=operator_headers).json()["items"]
    assert others and all(i["credential_id"] is None for i in others)
