"""POST /api/v1/sign, /sign/batch and the registry routes over HTTP: results, errors, authorization."""
from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from api import tokens
from api.container import Container
from tests.helpers.api import count, meta, new_token, sign
from tests.helpers.signing import CORPUS, SpecialistPhone, root_pem
from tests.helpers.validation import validate_all


def test_sign_returns_pdf_with_headers(client: TestClient, pki: Container, specialist: str,
                                       client_headers: dict[str, str], sample_pdf: bytes, phone: SpecialistPhone) -> None:
    r = sign(client, client_headers, sample_pdf, meta(specialist, level="B-LT"), phone)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-signature-level"] == "B-LT" and r.headers["x-upgrade-pending"] == "false"
    document_id = r.headers["x-document-id"]
    assert r.headers["x-verify-url"].endswith(f"/v/{document_id}")
    [verdict] = validate_all(r.content, root_pem(pki), ltv=True)
    assert verdict.bottom_line
    record = client.get(f"/api/v1/documents/{document_id}", headers=client_headers).json()
    assert record["dossier_number"] == "HS-1" and record["level"] == "B-LT" and record["status"] == "valid"
    file = client.get(f"/api/v1/documents/{document_id}/file", headers=client_headers)
    assert file.content == r.content and file.headers["x-document-version"] == "1"
    assert client.get("/api/v1/documents?dossier_number=HS-1&level=B-LT", headers=client_headers).json()["total"] == 1
    assert client.get("/api/v1/documents?dossier_number=HS-2", headers=client_headers).json()["total"] == 0


def test_json_variant(client: TestClient, specialist: str, client_headers: dict[str, str], sample_pdf: bytes,
                      phone: SpecialistPhone) -> None:
    r = sign(client, {**client_headers, "Accept": "application/json"}, sample_pdf, meta(specialist), phone)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert base64.b64decode(body["pdf_base64"]).startswith(sample_pdf)
    assert body["verify_url"].endswith("/v/" + body["document_id"]) and body["level"] == "B-T"


def test_idempotency_over_http(client: TestClient, specialist: str, client_headers: dict[str, str],
                               sample_pdf: bytes, phone: SpecialistPhone) -> None:
    headers = {**client_headers, "Idempotency-Key": "dossier-42-attempt"}
    first = sign(client, headers, sample_pdf, meta(specialist), phone)
    second = sign(client, headers, sample_pdf, meta(specialist))  # a retry returns the first result: no new SAD
    assert first.status_code == second.status_code == 200
    assert first.headers["x-document-id"] == second.headers["x-document-id"] and first.content == second.content
    assert count(client, client_headers) == 1
    reused = sign(client, headers, sample_pdf, meta(specialist, dossier_number="HS-OTHER"))
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"


def test_batch_items_succeed_or_fail_alone(client: TestClient, specialist: str, client_headers: dict[str, str],
                                           sample_pdf: bytes, phone: SpecialistPhone) -> None:
    files = [("files", (f"{i}.pdf", sample_pdf, "application/pdf")) for i in range(3)]
    files.insert(1, ("files", ("bad.pdf", b"not a pdf at all", "application/pdf")))
    files.append(("files", ("locked.pdf", (CORPUS / "graph-encrypted.pdf").read_bytes(), "application/pdf")))
    items = [{"dossier_number": f"HS-{i}"} for i in range(5)]
    headers = {**client_headers, "Idempotency-Key": "batch-1"}
    sad = phone.authorize(client, client_headers, *(f[1][1] for f in files if f[1][0] != "bad.pdf"))
    body = {"defaults": meta(specialist, sad=sad), "items": items}
    r = client.post("/api/v1/sign/batch", files=files, data={"metadata": json.dumps(body)}, headers=headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["signed"], out["failed"]) == (3, 2)
    assert [i["ok"] for i in out["items"]] == [True, False, True, True, False]
    assert out["items"][1]["error"]["code"] == "unreadable_pdf" and out["items"][1]["error"]["status"] == 422
    assert out["items"][4]["error"]["code"] == "encrypted_pdf"
    assert out["items"][2]["result"]["document_id"] != out["items"][0]["result"]["document_id"]
    assert count(client, client_headers) == 3
    # a retry of the whole batch with the same key signs nothing twice
    again = client.post("/api/v1/sign/batch", files=files, data={"metadata": json.dumps(body)}, headers=headers).json()
    assert [i["result"]["document_id"] for i in again["items"] if i["ok"]] == \
           [i["result"]["document_id"] for i in out["items"] if i["ok"]]
    assert all(i["result"]["replayed"] for i in again["items"] if i["ok"])
    assert count(client, client_headers) == 3


def test_batch_limits(client: TestClient, pki: Container, specialist: str, client_headers: dict[str, str],
                      sample_pdf: bytes) -> None:
    too_many = [("files", (f"{i}.pdf", b"%PDF-", "application/pdf")) for i in range(pki.settings.max_batch_items + 1)]
    r = client.post("/api/v1/sign/batch", files=too_many, data={"metadata": json.dumps({"defaults": meta(specialist)})},
                    headers=client_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "batch_too_large"
    r = client.post("/api/v1/sign/batch", files=[("files", ("a.pdf", sample_pdf, "application/pdf"))],
                    data={"metadata": json.dumps({"defaults": meta(specialist), "items": [{}, {}]})}, headers=client_headers)
    assert r.status_code == 422


@pytest.mark.parametrize("metadata,code", [
    ("not json", "invalid_metadata"),
    (json.dumps({"document_type": "dossier-result"}), "invalid_metadata"),
    (json.dumps({**meta("cred_x"), "surprise": 1}), "invalid_metadata"),
    (json.dumps(meta("cred_" + "0" * 24)), "unknown_credential"),
    (json.dumps({**meta("cred_x"), "document_type": "nope"}), "unknown_document_type"),
])
def test_bad_metadata(client: TestClient, client_headers: dict[str, str], sample_pdf: bytes, metadata: str,
                      code: str) -> None:
    r = client.post("/api/v1/sign", files={"file": ("in.pdf", sample_pdf, "application/pdf")},
                    data={"metadata": metadata}, headers=client_headers)
    assert r.status_code in (404, 422), r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]


@pytest.mark.parametrize("name", ["graph-encrypted.pdf", "fuzz-378014596.pdf"])
def test_hostile_pdfs_are_4xx_and_leave_nothing(client: TestClient, specialist: str, client_headers: dict[str, str],
                                                name: str, phone: SpecialistPhone) -> None:
    r = sign(client, client_headers, (CORPUS / name).read_bytes(), meta(specialist), phone)
    assert r.status_code in (200, 422), r.text  # a repairable file may sign; never a 500
    if r.status_code == 422:
        assert r.json()["error"]["code"] in ("encrypted_pdf", "unreadable_pdf", "pdf_no_pages")
        assert count(client, client_headers) == 0


def test_not_multipart_and_no_file(client: TestClient, specialist: str, client_headers: dict[str, str]) -> None:
    r = client.post("/api/v1/sign", json=meta(specialist), headers=client_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = sign(client, client_headers, b"GIF89a....", meta(specialist))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unreadable_pdf"


def test_oversize_upload_is_413(pki: Container, specialist: str, client_headers: dict[str, str]) -> None:
    from api.app import create_app

    small = pki.settings.model_copy(update={"max_pdf_bytes": 2048})
    pki.pki.settings = small  # type: ignore[misc]
    pki.settings = small  # type: ignore[misc]
    with TestClient(create_app(pki, scheduler=False), raise_server_exceptions=False) as c:
        r = sign(c, client_headers, b"%PDF-1.7\n" + b"0" * 5000, meta(specialist))
        assert r.status_code == 413, r.text
        big = sign(c, client_headers, b"%PDF-1.7\n" + b"0" * 4_000_000, meta(specialist))
        assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"


def test_authorization(client: TestClient, pki: Container, specialist: str, client_headers: dict[str, str],
                       sample_pdf: bytes, phone: SpecialistPhone) -> None:
    auditor = {"Authorization": f"Bearer {new_token(pki, tokens.Role.auditor)}"}
    assert sign(client, {}, sample_pdf, meta(specialist)).status_code == 401
    assert sign(client, {"Authorization": "Bearer kyso_forged"}, sample_pdf, meta(specialist)).status_code == 401
    assert sign(client, auditor, sample_pdf, meta(specialist)).status_code == 403
    assert client.get("/api/v1/documents").status_code == 401
    r = client.put(f"/api/v1/credentials/{specialist}/images/signature", content=b"\x89PNG", headers={
        **client_headers, "Content-Type": "image/png"})
    assert r.status_code == 403, "clients may not enrol images"
    signed = sign(client, client_headers, sample_pdf, meta(specialist), phone)
    doc = signed.headers["x-document-id"]
    assert client.post(f"/api/v1/documents/{doc}/withdraw", json={"reason": "error"}, headers=auditor).status_code == 403


def test_withdraw_supersede_and_unknown(client: TestClient, specialist: str, client_headers: dict[str, str],
                                        sample_pdf: bytes, phone: SpecialistPhone) -> None:
    a = sign(client, client_headers, sample_pdf, meta(specialist), phone).headers["x-document-id"]
    b = sign(client, client_headers, sample_pdf, meta(specialist), phone).headers["x-document-id"]
    r = client.post(f"/api/v1/documents/{a}/supersede", json={"by": b, "reason": "corrected"}, headers=client_headers)
    assert r.status_code == 200 and r.json()["status"] == "superseded" and r.json()["superseded_by"] == b
    r = client.post(f"/api/v1/documents/{a}/withdraw", json={"reason": "again"}, headers=client_headers)
    assert r.status_code == 409
    r = client.post(f"/api/v1/documents/{b}/withdraw", json={"reason": "issued in error"}, headers=client_headers)
    assert r.status_code == 200 and r.json()["status_reason"] == "issued in error"
    assert client.get("/api/v1/documents?status=withdrawn", headers=client_headers).json()["total"] == 1
    missing = client.get("/api/v1/documents/NOPE23456789", headers=client_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_document"
    assert client.get(f"/api/v1/documents/{a}/file?version=9", headers=client_headers).status_code == 404


def test_enroll_images(client: TestClient, pki: Container, specialist: str, operator_headers: dict[str, str]) -> None:
    from pathlib import Path

    png = (Path(__file__).resolve().parents[2] / "signing" / "create" / "assets").glob("*.png")
    image = next(iter(sorted(png))).read_bytes()
    url = f"/api/v1/credentials/{specialist}/images/signature"
    assert client.put(url, content=image, headers={**operator_headers, "Content-Type": "image/png"}).status_code == 204
    assert pki.signing.stamp_images(specialist) == {"signature": image}
    wrong = client.put(url, content=image, headers={**operator_headers, "Content-Type": "image/jpeg"})
    assert wrong.status_code == 415
    junk = client.put(url, content=b"\x89PNG\r\n\x1a\nnot really", headers={**operator_headers, "Content-Type": "image/png"})
    assert junk.status_code == 422
    other = client.put(f"/api/v1/credentials/{specialist}/images/photo", content=image,
                       headers={**operator_headers, "Content-Type": "image/png"})
    assert other.status_code == 422
    unknown = client.put("/api/v1/credentials/cred_nope/images/seal", content=image,
                         headers={**operator_headers, "Content-Type": "image/png"})
    assert unknown.status_code == 404


def test_document_types_listed(client: TestClient, client_headers: dict[str, str]) -> None:
    types = {t["name"]: t for t in client.get("/api/v1/document-types", headers=client_headers).json()}
    assert types["civil-status-extract-birth"]["qr"] is False, "the MoJ QR on extracts must stay uncovered"
    assert types["construction-permit"]["level"] == "B-LTA"
