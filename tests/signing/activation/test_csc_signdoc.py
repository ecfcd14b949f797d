"""CSC signatures/signDoc (kyso signs whole PDFs, PAdES, one SAD per call), auth/revoke and auth/login's expires_in."""
from __future__ import annotations

import base64
import datetime as dt
import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit, clock
from core.db import transaction
from hsm import KeyType
from tests.helpers.api import new_token
from tests.helpers.signing import COMMUNE, CORPUS, SpecialistPhone, issue_credential, root_pem
from tests.helpers.validation import validate_all

ECDSA_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_SHA384 = "1.2.840.10045.4.3.3"
RSA_SHA256 = "1.2.840.113549.1.1.11"
RSA_PSS = "1.2.840.113549.1.1.10"
KYSO = {"document_type": "dossier-result", "commune_code": COMMUNE, "appearance": {"visible": False}}


def variants(pdf: bytes, n: int) -> list[bytes]:
    """``n`` different PDFs (distinct hashes): the same file with a distinct trailing comment."""
    return [pdf + f"\n% dossier {i}\n".encode() for i in range(n)]


def doc(pdf: bytes, **extra: object) -> dict[str, object]:
    return {"document": base64.b64encode(pdf).decode(), "signature_format": "P",
            "conformance_level": "AdES-B-B", **extra}


def sign_doc(client: TestClient, headers: dict[str, str], credential: str, sad: str | None,
             documents: list[dict[str, object]], **extra: object):  # type: ignore[no-untyped-def]
    body = {"credentialID": credential, "documents": documents, "kyso": KYSO, **extra}
    if sad is not None:
        body["SAD"] = sad
    return client.post("/csc/v2/signatures/signDoc", headers=headers, json=body)


def registered(client: TestClient, headers: dict[str, str]) -> list[dict]:
    return client.get("/api/v1/documents", headers=headers).json()["items"]


def audit_of(container: Container, action: str) -> list[tuple[str, dict]]:
    with transaction(container.sessions) as session:
        rows = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == action)
                               .order_by(audit.AuditEntry.seq)).scalars().all()
        return [(r.actor, json.loads(r.details)) for r in rows]


def test_two_documents_under_one_sad(client: TestClient, pki: Container, specialist: str,
                                     client_headers: dict[str, str], sample_pdf: bytes, phone: SpecialistPhone) -> None:
    pdfs = variants(sample_pdf, 2)
    sad = phone.authorize(client, client_headers, *pdfs)
    r = sign_doc(client, client_headers, specialist, sad, [
        doc(pdfs[0], conformance_level="AdES-B-LT", signAlgo=ECDSA_SHA256, signed_envelope_property="Certification",
            kyso={"dossier_number": "HS-1"}),
        doc(pdfs[1], kyso={"dossier_number": "HS-2"})])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["SignatureObject"] == [] and len(out["DocumentWithSignature"]) == 2
    signed = [base64.b64decode(d) for d in out["DocumentWithSignature"]]
    assert all(s.startswith(p) for s, p in zip(signed, pdfs))  # incremental updates of the exact bytes
    [lt] = validate_all(signed[0], root_pem(pki), ltv=True)
    [bb] = validate_all(signed[1], root_pem(pki), ltv=False)
    assert lt.bottom_line and lt.docmdp_ok is not False and bb.intact and bb.valid and bb.trusted
    assert [k["level"] for k in out["kyso"]] == ["B-LT", "B-B"]
    assert all(k["verify_url"].endswith("/v/" + k["document_id"]) for k in out["kyso"])
    records = {d["document_id"]: d for d in registered(client, client_headers)}
    assert set(records) == {k["document_id"] for k in out["kyso"]}
    assert sorted(d["dossier_number"] for d in records.values()) == ["HS-1", "HS-2"]
    consumed = audit_of(pki, "activation:sad:consume")
    assert len(consumed) == 1 and consumed[0][1]["count"] == 2
    # the SAD was spent once, for both: it signs nothing more
    again = sign_doc(client, client_headers, specialist, sad, [doc(pdfs[0])])
    assert again.status_code == 403 and again.json()["error"] == "invalid_sad"
    assert "already used" in again.json()["error_description"]
    assert again.json()["kyso"] == {"failed_document": 0, "signed": []}
    assert len(registered(client, client_headers)) == 2


def test_sign_algo_chooses_the_rsa_padding(client: TestClient, pki: Container, client_headers: dict[str, str],
                                           sample_pdf: bytes) -> None:
    credential = issue_credential(pki, key_type=KeyType.RSA_2048, name="Lê Văn Cường", id_number="001190000003")
    pdfs = variants(sample_pdf, 3)
    sad = SpecialistPhone(pki, credential).authorize(client, client_headers, *pdfs)
    r = sign_doc(client, client_headers, credential, sad, [doc(pdfs[0], signAlgo=RSA_SHA256),
                                                           doc(pdfs[1], signAlgo=RSA_PSS), doc(pdfs[2])])
    assert r.status_code == 200, r.text
    mechanisms = [validate_all(base64.b64decode(d), root_pem(pki), ltv=False)[0].signature_mechanism
                  for d in r.json()["DocumentWithSignature"]]
    assert mechanisms == ["sha256_rsa", "rsassa_pss", "rsassa_pss"]  # PSS unless PKCS#1 v1.5 is named


def test_a_sad_not_covering_every_document_signs_none(client: TestClient, specialist: str,
                                                      client_headers: dict[str, str], sample_pdf: bytes,
                                                      phone: SpecialistPhone) -> None:
    pdfs = variants(sample_pdf, 2)
    sad = phone.authorize(client, client_headers, pdfs[0])  # the second was slipped in afterwards
    r = sign_doc(client, client_headers, specialist, sad, [doc(p) for p in pdfs])
    assert r.status_code == 403 and r.json()["error"] == "invalid_sad", r.text
    assert r.json()["kyso"]["signed"] == []
    assert registered(client, client_headers) == []
    # not spent by the refusal: the authorized document alone still goes through
    ok = sign_doc(client, client_headers, specialist, sad, [doc(pdfs[0])])
    assert ok.status_code == 200, ok.text
    assert len(registered(client, client_headers)) == 1


def test_without_a_sad_a_specialist_is_refused(client: TestClient, specialist: str, client_headers: dict[str, str],
                                               sample_pdf: bytes, phone: SpecialistPhone) -> None:
    r = sign_doc(client, client_headers, specialist, None, [doc(sample_pdf)])
    assert r.status_code == 403 and r.json()["error"] == "activation_required", r.text
    assert registered(client, client_headers) == []


def test_a_seal_needs_no_sad(client: TestClient, specialist: str, seal: str, client_headers: dict[str, str],
                              sample_pdf: bytes, phone: SpecialistPhone) -> None:
    person = sign_doc(client, client_headers, specialist, phone.authorize(client, client_headers, sample_pdf),
                      [doc(sample_pdf, kyso={"appearance": {"visible": True}})])  # replaces the top-level one
    assert person.status_code == 200, person.text
    signed = base64.b64decode(person.json()["DocumentWithSignature"][0])
    sealed = sign_doc(client, client_headers, seal, None, [doc(signed, kyso={"appearance": {"visible": True, "kind": "seal"}})])
    assert sealed.status_code == 200, sealed.text
    assert sealed.json()["kyso"][0]["document_id"] == person.json()["kyso"][0]["document_id"]


def test_a_failure_after_the_first_document_says_what_was_signed(client: TestClient, specialist: str,
                                                                 client_headers: dict[str, str], sample_pdf: bytes,
                                                                 phone: SpecialistPhone) -> None:
    pdfs = [sample_pdf, (CORPUS / "graph-encrypted.pdf").read_bytes()]  # passes the header check, cannot be signed
    sad = phone.authorize(client, client_headers, *pdfs)
    r = sign_doc(client, client_headers, specialist, sad, [doc(p) for p in pdfs])
    assert r.status_code == 400 and r.json()["error"] == "encrypted_pdf", r.text
    assert r.json()["error_description"].startswith("documents[1]: ")
    [first] = r.json()["kyso"]["signed"]
    assert r.json()["kyso"]["failed_document"] == 1
    assert [d["document_id"] for d in registered(client, client_headers)] == [first["document_id"]]


def test_malformed_requests_are_refused_before_anything_is_signed(client: TestClient, pki: Container, specialist: str,
                                                                  client_headers: dict[str, str], sample_pdf: bytes,
                                                                  phone: SpecialistPhone) -> None:
    sad = phone.authorize(client, client_headers, sample_pdf)
    good = doc(sample_pdf)
    cases = [
        ([good, doc(sample_pdf, signature_format="C")], {}, "PAdES only"),
        ([doc(sample_pdf, signature_format="X")], {}, '("P")'),
        ([doc(sample_pdf, conformance_level="AdES-T")], {}, "Ades-B-LTA"),
        ([doc(sample_pdf, signed_envelope_property="Detached")], {}, "Certification"),
        ([doc(sample_pdf, signAlgo=ECDSA_SHA384)], {}, "sha256"),
        ([good, {**good, "document": "not base64!"}], {}, "documents[1].document"),
        ([doc(b"not a pdf at all")], {}, "no %PDF- header"),
        ([good], {"kyso": {"commune_code": COMMUNE}}, "document_type"),
        ([doc(sample_pdf, kyso={"document_type": "no-such-type"})], {}, "unknown document type"),
        ([], {}, "documents"),
        (None, {"documentDigests": [{"hashes": ["AA=="], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1"}]},
         "signatures/signHash"),
        ([good], {"returnValidationInfo": True}, "in the signed PDF"),
        ([good], {"signatureQualifier": "eu_eidas_qes"}, "signatureQualifier"),
    ]
    for documents, extra, words in cases:
        body = {"credentialID": specialist, "SAD": sad, "kyso": KYSO, **extra}
        if documents is not None:
            body["documents"] = documents
        r = client.post("/csc/v2/signatures/signDoc", headers=client_headers, json=body)
        assert r.status_code == 400, (words, r.status_code, r.text)
        assert words in r.json()["error_description"], (words, r.json())
    assert registered(client, client_headers) == []
    assert audit_of(pki, "activation:sad:consume") == []  # nothing burnt the SAD: it still signs
    assert sign_doc(client, client_headers, specialist, sad, [good]).status_code == 200


def test_too_many_documents(client: TestClient, pki: Container, specialist: str, client_headers: dict[str, str],
                            sample_pdf: bytes) -> None:
    count = pki.settings.max_batch_items + 1
    r = sign_doc(client, client_headers, specialist, "kyso_sad_x", [doc(sample_pdf)] * count)
    assert r.status_code == 400 and f"at most {count - 1} documents" in r.json()["error_description"]


def test_a_commune_outside_the_token_scope_is_refused(client: TestClient, pki: Container, specialist: str,
                                                      sample_pdf: bytes) -> None:
    with transaction(pki.sessions) as session:
        scope = tokens.build_scope(session, units=[COMMUNE], operations=["sign", "read"])
        headers = {"Authorization": f"Bearer {tokens.create(session, 'scoped', tokens.Role.client, 'test', scope=scope)}"}
    r = sign_doc(client, headers, specialist, "kyso_sad_x", [doc(sample_pdf),
                                                             doc(sample_pdf, kyso={"commune_code": "00008"})])
    assert r.status_code == 403 and r.json()["error"] == "access_denied", r.text
    assert "00008" in r.json()["error_description"]
    assert registered(client, headers) == []
    [(actor, denial)] = audit_of(pki, "api:authz:deny")
    assert actor == "token:scoped" and denial["item"] == 1


def test_unauthenticated_calls_are_refused(client: TestClient, specialist: str, sample_pdf: bytes) -> None:
    for route, body in (("signatures/signDoc", {"credentialID": specialist, "documents": [doc(sample_pdf)]}),
                        ("auth/revoke", {"token": "kyso_" + "A" * 43})):
        for headers in ({}, {"Authorization": "Bearer kyso_" + "A" * 43}):
            r = client.post(f"/csc/v2/{route}", headers=headers, json=body)
            assert r.status_code == 401 and r.json()["error"] == "invalid_token", (route, r.text)
            assert r.headers["WWW-Authenticate"] == "Bearer"


def test_info_lists_the_new_methods(client: TestClient) -> None:
    info = client.get("/csc/v2/info").json()
    assert {"signatures/signDoc", "auth/revoke"} <= set(info["methods"])
    assert info["signature_formats"]["formats"] == ["P"]


def test_revoke_ends_only_the_callers_own_token(client: TestClient, pki: Container) -> None:
    mine, other = new_token(pki, tokens.Role.client, "mine"), new_token(pki, tokens.Role.client, "other")
    headers = {"Authorization": f"Bearer {mine}"}
    r = client.post("/csc/v2/auth/revoke", headers=headers, json={"token": other})
    assert r.status_code == 403 and r.json()["error"] == "access_denied"
    r = client.post("/csc/v2/auth/revoke", headers=headers, json={"token": mine, "token_type_hint": "refresh_token"})
    assert r.status_code == 400
    for token in (mine, other):
        assert client.post("/csc/v2/auth/login", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = client.post("/csc/v2/auth/revoke", headers=headers, json={"token": mine, "token_type_hint": "access_token"})
    assert r.status_code == 204 and r.content == b""
    assert client.post("/csc/v2/credentials/list", headers=headers, json={}).status_code == 401
    assert client.get("/api/v1/documents", headers=headers).status_code == 401
    assert client.post("/csc/v2/auth/login", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert [a for a, d in audit_of(pki, "api:token:revoke")] == ["token:mine"]
    [(_, denial)] = audit_of(pki, "api:authz:deny")
    assert "only the bearer token" in denial["reason"]


def test_login_expires_in(client: TestClient, pki: Container) -> None:
    forever = new_token(pki, tokens.Role.client, "forever")
    body = client.post("/csc/v2/auth/login", headers={"Authorization": f"Bearer {forever}"}).json()
    assert body["access_token"] == forever and "expires_in" not in body
    with transaction(pki.sessions) as session:
        old = tokens.create(session, "dated", tokens.Role.client, "test",
                            expires_at=clock.now() + dt.timedelta(days=30))
    with transaction(pki.sessions) as session:
        new = tokens.rotate(session, "dated", "test", grace=dt.timedelta(hours=1))
    for token, seconds in ((new, 30 * 86400), (old, 3600)):  # a rotated-out secret: until its grace ends
        body = client.post("/csc/v2/auth/login", headers={"Authorization": f"Bearer {token}"}, json={}).json()
        assert body["access_token"] == token and body["token_type"] == "Bearer"
        assert seconds - 60 < body["expires_in"] <= seconds, body
