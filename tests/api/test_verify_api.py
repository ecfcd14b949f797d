"""POST /api/v1/verify over HTTP: open to anyone, rate-limited, JSON / HTML / sealed PDF, clear errors."""
from __future__ import annotations

import dataclasses
import io

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from api.app import create_app
from api.container import Container
from tests.helpers.api import meta, sign
from tests.helpers.signing import CORPUS, SpecialistPhone, issue_credential


def upload(client: TestClient, pdf: bytes, **kw: object):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/verify", files={"file": ("doc.pdf", pdf, "application/pdf")}, **kw)


@pytest.fixture
def signed(client: TestClient, specialist: str, client_headers: dict[str, str], sample_pdf: bytes,
           phone: SpecialistPhone) -> tuple[str, bytes]:
    r = sign(client, client_headers, sample_pdf, meta(specialist, level="B-LT"), phone)
    assert r.status_code == 200, r.text
    return r.headers["x-document-id"], r.content


def test_json_report_without_authentication(client: TestClient, signed: tuple[str, bytes]) -> None:
    document_id, pdf = signed
    r = upload(client, pdf)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["indication"] == "TOTAL-PASSED" and body["genuine"] is True
    assert body["registry"]["document_id"] == document_id and body["registry"]["is_current"] is True
    [sig] = body["signatures"]
    assert sig["level"] == "B-LT" and sig["signer"]["common_name"] == "Nguyễn Thị Hồng Nhung"
    assert sig["revocation"] == {"status": "good", "source": "kyso", "revoked_at": None, "reason": None,
                                 "revoked_after_signing": None}
    assert sig["summary"]["vi"].startswith("Chữ ký hợp lệ") and sig["summary"]["en"].startswith("Valid signature")


def test_html_report_in_both_languages(client: TestClient, signed: tuple[str, bytes]) -> None:
    _, pdf = signed
    vi = upload(client, pdf, headers={"Accept": "text/html"})
    assert vi.status_code == 200 and vi.headers["content-type"].startswith("text/html")
    assert "Báo cáo kiểm tra chữ ký số" in vi.text and "Nguyễn Thị Hồng Nhung" in vi.text
    en = upload(client, pdf, params={"format": "html", "lang": "en"})
    assert "Signature verification report" in en.text and "TOTAL-PASSED" in en.text


def test_pdf_report_is_sealed_and_validates(pki: Container, signed: tuple[str, bytes], tmp_path) -> None:  # type: ignore[no-untyped-def]
    seal = issue_credential(pki, "seal", name="kyso - dịch vụ kiểm tra chữ ký số")
    settings = pki.settings.model_copy(update={"report_seal_credential": seal})
    container = dataclasses.replace(pki, settings=settings)
    container.pki.settings = settings  # type: ignore[misc]
    with TestClient(create_app(container, scheduler=False)) as client:
        r = upload(client, signed[1], params={"format": "pdf"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        report = pki.verifier.verify(r.content)
        assert report.indication == "TOTAL-PASSED", report.summary
        assert report.signatures[0].signer.common_name == "kyso - dịch vụ kiểm tra chữ ký số"  # type: ignore[union-attr]
        assert report.signatures[0].coverage.docmdp_permission == 2
        # the report says it is sealed, and by whom: the seal certificate's organisation (or its name)
        subject = pki.signing.material.signer(seal).certificate.subject.native
        by = subject.get("organization_name") or subject["common_name"]
        text = " ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(r.content)).pages)
        assert f"được đóng dấu số (ký số) bởi «{by}»" in " ".join(text.split()), text


def test_pdf_report_without_seal_says_how_to_configure(client: TestClient, signed: tuple[str, bytes]) -> None:
    r = upload(client, signed[1], headers={"Accept": "application/pdf"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "report_seal_not_configured"
    assert "KYSO_REPORT_SEAL_CREDENTIAL" in r.json()["error"]["message"]


@pytest.mark.parametrize("name, data, status, code", [
    ("not a pdf", b"hello, this is text", 422, "unreadable_pdf"),
    ("empty", b"", 422, "unreadable_pdf"),
    ("encrypted", (CORPUS / "graph-encrypted.pdf").read_bytes(), 422, "encrypted_pdf"),
])
def test_bad_uploads_get_clear_errors(client: TestClient, name: str, data: bytes, status: int, code: str) -> None:
    r = upload(client, data)
    assert r.status_code == status, (name, r.text)
    assert r.json()["error"]["code"] == code


def test_unsigned_pdf_is_reported_not_refused(client: TestClient, sample_pdf: bytes) -> None:
    r = upload(client, sample_pdf)
    assert r.status_code == 200
    assert r.json()["sub_indication"] == "NO_SIGNATURE_FOUND" and r.json()["genuine"] is False


def test_missing_file_part(client: TestClient) -> None:
    r = client.post("/api/v1/verify", data={"x": "y"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert "multipart/form-data" in r.json()["error"]["message"]
    r = client.post("/api/v1/verify", json={"pdf": "..."})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]


def test_raw_pdf_body(client: TestClient, signed: tuple[str, bytes]) -> None:
    r = client.post("/api/v1/verify", content=signed[1], headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200 and r.json()["registry"]["document_id"] == signed[0]
    r = client.post("/api/v1/verify", content=b"not a pdf", headers={"Content-Type": "application/pdf"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unreadable_pdf"


def test_oversize_upload_is_413(pki: Container) -> None:
    settings = pki.settings.model_copy(update={"max_pdf_bytes": 4096})
    with TestClient(create_app(dataclasses.replace(pki, settings=settings), scheduler=False)) as client:
        r = upload(client, b"%PDF-1.4\n" + b"0" * 10_000)
        assert r.status_code == 413 and r.json()["error"]["code"] in ("pdf_too_large", "request_too_large")


def test_rate_limit_per_address(pki: Container, sample_pdf: bytes) -> None:
    settings = pki.settings.model_copy(update={"verify_rate_per_second": 0.01, "verify_burst": 3})
    with TestClient(create_app(dataclasses.replace(pki, settings=settings), scheduler=False)) as client:
        codes = [upload(client, sample_pdf).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = upload(client, sample_pdf)
        assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1


def test_openapi_documents_the_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/verify" in spec["paths"]
    assert "VerificationReport" in spec["components"]["schemas"]
