"""Idempotency-Key on POST /api/v1/certificates: a retry after a dropped connection gets the same certificate."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from api import tokens
from core.audit import AuditEntry
from core.db import transaction
from pki.models import Certificate, Credential, IssuanceIdempotency
from tests.helpers.api import new_token

SPECIALIST = {"profile": "specialist", "commune_code": "00004",
              "subject": {"common_name": "Nguyễn Thị Hoa", "title": "Công chức Tư pháp - Hộ tịch",
                          "id_number": "001190000001"}}


def _counts(pki) -> dict[str, int]:
    with transaction(pki.sessions) as session:
        def count(model, *where):  # type: ignore[no-untyped-def]
            return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        return {
            "certificates": count(Certificate, Certificate.profile == "specialist"),
            "credentials": count(Credential),
            "issue_audits": count(AuditEntry, AuditEntry.action == "pki:certificate:issue"),
            "replay_audits": count(AuditEntry, AuditEntry.action == "pki:certificate:issue:replay"),
            "records": count(IssuanceIdempotency),
        }


def _keys(pki) -> set[str]:
    return {info.ref for info in pki.pki.keystores.get(None).list()}


def _csr_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Trần Văn An")]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_same_key_twice_issues_once_and_replays(client, operator_headers, pki):
    before, keys_before = _counts(pki), _keys(pki)
    headers = {**operator_headers, "Idempotency-Key": "dossier-42"}
    first = client.post("/api/v1/certificates", json=SPECIALIST, headers=headers)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = client.post("/api/v1/certificates", json=SPECIALIST, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    a, b = first.json(), again.json()
    assert b["certificate"]["serial"] == a["certificate"]["serial"]
    assert b["credential_id"] == a["credential_id"] and b["key_ref"] == a["key_ref"]
    assert b == a  # the same body
    after = _counts(pki)
    assert after["certificates"] == before["certificates"] + 1
    assert after["credentials"] == before["credentials"] + 1
    assert after["issue_audits"] == before["issue_audits"] + 1, "a replay is not a second issuance"
    assert after["replay_audits"] == before["replay_audits"] + 1
    assert after["records"] == before["records"] + 1
    assert _keys(pki) - keys_before == {a["key_ref"]}, "one key generated, none for the replay"


def test_without_key_every_post_issues(client, operator_headers, pki):
    before = _counts(pki)
    for _ in range(2):
        assert client.post("/api/v1/certificates", json=SPECIALIST, headers=operator_headers).status_code == 201
    after = _counts(pki)
    assert after["certificates"] == before["certificates"] + 2 and after["records"] == before["records"]


def test_csr_issuance_replays_too(client, operator_headers, pki):
    body = {**SPECIALIST, "csr": _csr_pem()}
    headers = {**operator_headers, "Idempotency-Key": "csr-1"}
    first = client.post("/api/v1/certificates", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/certificates", json=body, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again.json()["credential_id"] is None


def test_same_key_different_request_is_refused(client, operator_headers, pki):
    headers = {**operator_headers, "Idempotency-Key": "k-1"}
    assert client.post("/api/v1/certificates", json=SPECIALIST, headers=headers).status_code == 201
    before, keys_before = _counts(pki), _keys(pki)
    other = {**SPECIALIST, "subject": {**SPECIALIST["subject"], "common_name": "Lê Văn Bình"}}
    r = client.post("/api/v1/certificates", json=other, headers=headers)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert _counts(pki) == before, "nothing issued, nothing audited"
    assert _keys(pki) == keys_before, "no key generated"


def test_another_client_with_the_same_key_is_independent(client, operator_headers, pki):
    other_headers = {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator)}", "Idempotency-Key": "k-1"}
    mine = client.post("/api/v1/certificates", json=SPECIALIST, headers={**operator_headers, "Idempotency-Key": "k-1"})
    theirs = client.post("/api/v1/certificates", json=SPECIALIST, headers=other_headers)
    assert mine.status_code == 201 and theirs.status_code == 201, (mine.text, theirs.text)
    assert mine.json()["certificate"]["serial"] != theirs.json()["certificate"]["serial"]
    assert "Idempotent-Replayed" not in theirs.headers


def test_concurrent_requests_with_one_key_issue_once(client, operator_headers, pki, monkeypatch):
    """Both requests pass the replay check and generate a key (a barrier holds them until both have), so
    they really race to commit: the loser's record insert hits the unique constraint, its transaction
    rolls back, its key is destroyed and it answers with the winner's certificate."""
    store = pki.pki.keystores.get(None)
    generate = store.generate
    both_generated = threading.Barrier(2, timeout=60)
    generated: list[str] = []

    def generate_then_wait(*args, **kwargs):  # type: ignore[no-untyped-def]
        ref = generate(*args, **kwargs)
        generated.append(ref)
        both_generated.wait()
        return ref

    monkeypatch.setattr(store, "generate", generate_then_wait)
    before, keys_before = _counts(pki), _keys(pki)
    headers = {**operator_headers, "Idempotency-Key": "race"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: client.post("/api/v1/certificates", json=SPECIALIST, headers=headers),
                                range(2)))
    assert sorted(r.status_code for r in answers) == [200, 201], [r.text for r in answers]
    serials = {r.json()["certificate"]["serial"] for r in answers}
    refs = {r.json()["key_ref"] for r in answers}
    assert len(serials) == 1 and len(refs) == 1
    replayed = [r for r in answers if r.status_code == 200][0]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    after = _counts(pki)
    assert after["certificates"] == before["certificates"] + 1
    assert after["credentials"] == before["credentials"] + 1
    assert after["issue_audits"] == before["issue_audits"] + 1
    assert after["records"] == before["records"] + 1
    assert len(generated) == 2, "both requests got past the replay check"
    assert _keys(pki) - keys_before == refs, "the loser's key was deleted from the keystore"


def test_renewal_replays_instead_of_renewing_twice(client, operator_headers, pki):
    issued = client.post("/api/v1/certificates", json=SPECIALIST, headers=operator_headers).json()
    serial = issued["certificate"]["serial"]
    headers = {**operator_headers, "Idempotency-Key": "renew-1"}
    before = _counts(pki)
    first = client.post(f"/api/v1/certificates/{serial}/renew", json={}, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post(f"/api/v1/certificates/{serial}/renew", json={}, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.text
    assert again.json() == first.json()
    assert _counts(pki)["certificates"] == before["certificates"] + 1
    # the same key for another operation is a different request
    r = client.post(f"/api/v1/certificates/{serial}/renew", json={"new_key": True}, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"


def test_retried_new_key_renewal_returns_it_rather_than_409(client, operator_headers, pki):
    issued = client.post("/api/v1/certificates", json=SPECIALIST, headers=operator_headers).json()
    serial = issued["certificate"]["serial"]
    headers = {**operator_headers, "Idempotency-Key": "renew-new-key"}
    keys_before = _keys(pki)
    first = client.post(f"/api/v1/certificates/{serial}/renew", json={"new_key": True}, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post(f"/api/v1/certificates/{serial}/renew", json={"new_key": True}, headers=headers)
    assert again.status_code == 200 and again.json() == first.json(), again.text
    assert _keys(pki) - keys_before == {first.json()["key_ref"]}
    # without the key, renewing the superseded certificate is still refused
    r = client.post(f"/api/v1/certificates/{serial}/renew", json={"new_key": True}, headers=operator_headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "revocation_conflict"
