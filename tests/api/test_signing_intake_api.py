"""A PDF with no page tree gets the same clear 422 from /sign, /sign/batch and /sign/requests: never signed,
never registered, never put before a specialist; a damaged file burns no SAD."""
from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.container import Container
from core.audit import AuditEntry
from core.db import transaction
from signing.activation.models import SigningRequest
from tests.helpers import damaged
from tests.helpers.api import count, meta, sign
from tests.helpers.signing import SpecialistPhone


def signed_audits(container: Container) -> int:
    with transaction(container.sessions) as session:
        return session.execute(select(func.count()).select_from(AuditEntry)
                               .where(AuditEntry.action == "signing:document:sign")).scalar_one()


def test_sign_refuses_a_null_page_tree_and_the_sad_survives(client: TestClient, pki: Container, specialist: str,
                                                            client_headers: dict[str, str], sample_pdf: bytes,
                                                            phone: SpecialistPhone) -> None:
    bad = damaged.null_page_tree(sample_pdf)
    sad = phone.authorize(client, client_headers, bad, sample_pdf)
    r = sign(client, client_headers, bad, meta(specialist, sad=sad))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "pdf_no_pages" and "page tree" in r.json()["error"]["message"]
    assert count(client, client_headers) == 0 and signed_audits(pki) == 0
    good = sign(client, client_headers, sample_pdf, meta(specialist, sad=sad))
    assert good.status_code == 200, "the refused file spent nothing of the SAD"


def test_batch_refuses_the_damaged_item_alone(client: TestClient, pki: Container, specialist: str,
                                              client_headers: dict[str, str], sample_pdf: bytes,
                                              phone: SpecialistPhone) -> None:
    bad = damaged.empty_page_tree(sample_pdf)
    files = [("files", ("good.pdf", sample_pdf, "application/pdf")), ("files", ("empty.pdf", bad, "application/pdf"))]
    body = {"defaults": meta(specialist, sad=phone.authorize(client, client_headers, sample_pdf, bad))}
    r = client.post("/api/v1/sign/batch", files=files, data={"metadata": json.dumps(body)}, headers=client_headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["ok"] for i in items] == [True, False]
    assert items[1]["error"]["code"] == "pdf_no_pages" and items[1]["error"]["status"] == 422
    assert count(client, client_headers) == 1 and signed_audits(pki) == 1


def test_signing_request_refuses_a_file_that_cannot_be_signed(client: TestClient, pki: Container, specialist: str,
                                                              client_headers: dict[str, str], sample_pdf: bytes) -> None:
    files = [("files", ("good.pdf", sample_pdf, "application/pdf")),
             ("files", ("null.pdf", damaged.null_page_tree(sample_pdf), "application/pdf"))]
    r = client.post("/api/v1/sign/requests", files=files, data={"metadata": json.dumps({"defaults": meta(specialist)})},
                    headers=client_headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "pdf_no_pages" and error["message"].startswith("item 1:")
    with transaction(pki.sessions) as session:
        assert session.execute(select(func.count()).select_from(SigningRequest)).scalar_one() == 0
    # a damaged but repairable file is accepted: it will be repaired when it is signed
    shifted = damaged.shifted_offsets(sample_pdf)
    ok = client.post("/api/v1/sign/requests", files=[("files", ("shifted.pdf", shifted, "application/pdf"))],
                     data={"metadata": json.dumps({"defaults": meta(specialist)})}, headers=client_headers)
    assert ok.status_code == 202, ok.text


def test_sign_repairs_a_broken_xref_with_the_sad_for_the_bytes_sent(client: TestClient, pki: Container,
                                                                   specialist: str, client_headers: dict[str, str],
                                                                   sample_pdf: bytes, phone: SpecialistPhone) -> None:
    """The specialist authorized the file as sent; kyso signs its repaired rebuild with that authorization."""
    shifted = damaged.stale_startxref(sample_pdf)
    r = sign(client, client_headers, shifted, meta(specialist), phone)
    assert r.status_code == 200, r.text
    report = pki.verifier.verify(r.content)
    assert report.genuine and [s.indication for s in report.signatures] == ["TOTAL-PASSED"]
