"""Sole control over HTTP: a specialist's key signs through /api/v1/sign only what that specialist
authorized (PIN + one-time code → SAD bound to the exact PDF bytes). Each test tries to get around it."""
from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit, clock
from core.db import transaction
from tests.helpers.api import new_token
from tests.helpers.signing import COMMUNE, SpecialistPhone


def meta(credential: str, **extra: object) -> dict[str, object]:
    return {"document_type": "dossier-result", "commune_code": COMMUNE, "credential_id": credential,
            "level": "B-B", "appearance": {"visible": False}, **extra}


def sign(client: TestClient, headers: dict[str, str], pdf: bytes, metadata: dict):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/sign", files={"file": ("in.pdf", pdf, "application/pdf")},
                       data={"metadata": json.dumps(metadata)}, headers=headers)


def batch(client: TestClient, headers: dict[str, str], pdfs: list[bytes], defaults: dict, **kw: object):  # type: ignore[no-untyped-def]
    files = [("files", (f"{i}.pdf", pdf, "application/pdf")) for i, pdf in enumerate(pdfs)]
    return client.post("/api/v1/sign/batch", files=files, data={"metadata": json.dumps({"defaults": defaults})},
                       headers={**headers, **kw.get("extra_headers", {})})  # type: ignore[dict-item]


def documents(client: TestClient, headers: dict[str, str]) -> int:
    return client.get("/api/v1/documents", headers=headers).json()["total"]


def variants(pdf: bytes, n: int) -> list[bytes]:
    """``n`` different PDFs (distinct hashes): the same file with a distinct trailing comment."""
    return [pdf + f"\n% dossier {i}\n".encode() for i in range(n)]


def audit_actions(container: Container, credential: str) -> list[tuple[str, dict]]:
    with transaction(container.sessions) as session:
        rows = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.subject == credential)
                               .order_by(audit.AuditEntry.seq)).scalars().all()
        return [(r.action, json.loads(r.details)) for r in rows]


def test_specialist_without_sad_is_refused_with_directions(client: TestClient, pki: Container, specialist: str,
                                                           client_headers: dict[str, str], sample_pdf: bytes) -> None:
    r = sign(client, client_headers, sample_pdf, meta(specialist))
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "activation_required"
    assert "credentials/authorize" in error["message"] and "SHA-256" in error["message"]
    assert documents(client, client_headers) == 0
    assert ("activation:sad:deny", {"reason": "no SAD with a specialist credential",
                                    "answered": "activation_required"}) in audit_actions(pki, specialist)


def test_sad_signs_exactly_its_document_once(client: TestClient, pki: Container, specialist: str,
                                             client_headers: dict[str, str], sample_pdf: bytes,
                                             phone: SpecialistPhone) -> None:
    one, other = variants(sample_pdf, 2)
    sad = phone.authorize(client, client_headers, one)
    wrong = sign(client, client_headers, other, meta(specialist, sad=sad))
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_sad"
    assert "hash" in wrong.json()["error"]["message"]
    ok = sign(client, client_headers, one, meta(specialist, sad=sad))  # the refusal did not spend it
    assert ok.status_code == 200, ok.text
    again = sign(client, client_headers, one, meta(specialist, sad=sad))
    assert again.status_code == 403 and "already used" in again.json()["error"]["message"]
    assert documents(client, client_headers) == 1
    actions = [a for a, _ in audit_actions(pki, specialist)]
    assert actions.count("activation:sad:consume") == 1 and actions.count("activation:sad:deny") == 2


def test_expired_sad_and_sad_of_another_client(client: TestClient, pki: Container, specialist: str,
                                               client_headers: dict[str, str], sample_pdf: bytes,
                                               phone: SpecialistPhone) -> None:
    sad = phone.authorize(client, client_headers, sample_pdf)
    other_client = {"Authorization": f"Bearer {new_token(pki, tokens.Role.client)}"}
    stolen = sign(client, other_client, sample_pdf, meta(specialist, sad=sad))
    assert stolen.status_code == 403 and "another client" in stolen.json()["error"]["message"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    clock.set_clock(lambda: later)
    try:
        expired = sign(client, client_headers, sample_pdf, meta(specialist, sad=sad))
    finally:
        clock.set_clock(None)
    assert expired.status_code == 403 and "expired" in expired.json()["error"]["message"]
    forged = sign(client, client_headers, sample_pdf, meta(specialist, sad="kyso_sad_" + "A" * 43))
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_sad"
    assert documents(client, client_headers) == 0


def test_seal_needs_no_sad_but_follows_the_person(client: TestClient, pki: Container, specialist: str, seal: str,
                                                  client_headers: dict[str, str], sample_pdf: bytes,
                                                  phone: SpecialistPhone) -> None:
    sad = phone.authorize(client, client_headers, sample_pdf)
    person = sign(client, client_headers, sample_pdf, meta(specialist, sad=sad, appearance={"visible": True}))
    assert person.status_code == 200, person.text
    sealed = sign(client, client_headers, person.content, meta(seal, appearance={"visible": True, "kind": "seal"}))
    assert sealed.status_code == 200, sealed.text
    assert sealed.headers["x-document-id"] == person.headers["x-document-id"]


def test_one_sad_covers_a_batch_of_ten(client: TestClient, pki: Container, specialist: str,
                                       client_headers: dict[str, str], sample_pdf: bytes,
                                       phone: SpecialistPhone) -> None:
    pdfs = variants(sample_pdf, 10)
    sad = phone.authorize(client, client_headers, *pdfs)
    headers = {**client_headers, "Idempotency-Key": "ten-dossiers"}
    r = batch(client, headers, pdfs, meta(specialist, sad=sad))
    assert r.status_code == 200, r.text
    assert (r.json()["signed"], r.json()["failed"]) == (10, 0)
    consumed = [d for a, d in audit_actions(pki, specialist) if a == "activation:sad:consume"]
    assert len(consumed) == 1 and consumed[0]["count"] == 10
    # the connection dropped: the retry with the same key and the (spent) SAD returns the same ten
    again = batch(client, headers, pdfs, meta(specialist, sad=sad)).json()
    assert again["signed"] == 10 and all(i["result"]["replayed"] for i in again["items"])
    assert documents(client, client_headers) == 10


def test_a_batch_with_one_unauthorized_document_signs_nothing(client: TestClient, pki: Container, specialist: str,
                                                               client_headers: dict[str, str], sample_pdf: bytes,
                                                               phone: SpecialistPhone) -> None:
    pdfs = variants(sample_pdf, 4)
    sad = phone.authorize(client, client_headers, *pdfs[:3])  # the fourth was slipped in afterwards
    out = batch(client, client_headers, pdfs, meta(specialist, sad=sad)).json()
    assert out["signed"] == 0 and {i["error"]["code"] for i in out["items"]} == {"invalid_sad"}
    assert documents(client, client_headers) == 0
    # the SAD was not spent by the refused batch: the three authorized documents still go through
    ok = batch(client, client_headers, pdfs[:3], meta(specialist, sad=sad)).json()
    assert ok["signed"] == 3

