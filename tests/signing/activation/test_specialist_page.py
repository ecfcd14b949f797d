"""The specialist's page /me and signing requests: software submits, the specialist approves with PIN +
a fresh code on their own page, the software collects the result. Each test tries a way around it."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit
from core.db import transaction
from signing.activation import factors
from tests.helpers.activation import PIN, enroll
from tests.helpers.api import new_token
from tests.helpers.clock import FrozenClock
from tests.helpers.signing import COMMUNE, issue_credential, root_pem
from tests.helpers.specialist_page import CCCD, csrf, login, seen, submit
from tests.helpers.validation import validate_all


def meta(credential: str, **extra: object) -> dict[str, object]:
    return {"document_type": "dossier-result", "commune_code": COMMUNE, "credential_id": credential,
            "level": "B-T", "appearance": {"visible": False}, **extra}


def variants(pdf: bytes, n: int) -> list[bytes]:
    return [pdf + f"\n% dossier {i}\n".encode() for i in range(n)]




def test_request_approved_on_the_page_is_signed_for_the_client(client: TestClient, pki: Container, specialist: str,
                                                              client_headers: dict[str, str], sample_pdf: bytes,
                                                              frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    pdfs = variants(sample_pdf, 3)
    r = submit(client, client_headers, pdfs, meta(specialist), [{"dossier_number": f"HS-{i}"} for i in range(3)],
               note="Hồ sơ khai sinh sáng thứ Hai")
    assert r.status_code == 202, r.text
    request_id = r.json()["id"]
    assert r.json()["status"] == "pending" and r.json()["approve_url"].endswith("/me")
    assert client.get("/api/v1/documents", headers=client_headers).json()["total"] == 0, "nothing signed yet"

    assert login(client, CCCD, phone.code()).status_code == 303
    page = client.get("/me").text
    assert request_id in page and "Hồ sơ khai sinh sáng thứ Hai" in page and "HS-2" in page
    # the code used to sign in cannot approve; a wrong PIN counts toward the lockout
    stale = client.post(f"/me/requests/{request_id}/approve", data={"pin": PIN, "otp": phone.code(),
                                                                   **seen(client, request_id)})
    assert stale.status_code == 403 and "mã xác thực không đúng" in stale.text
    frozen.next_step()
    wrong = client.post(f"/me/requests/{request_id}/approve", data={"pin": "192837", "otp": phone.code(),
                                                                   **seen(client, request_id)})
    assert wrong.status_code == 403 and "mã xác thực không đúng" in wrong.text
    assert client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()["status"] == "pending"
    frozen.next_step()
    ok = client.post(f"/me/requests/{request_id}/approve", data={"pin": PIN, "otp": phone.code(),
                                                                 **seen(client, request_id)}, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    assert "Đã ký 3 văn bản, 0 văn bản không ký được" in client.get(ok.headers["location"]).text

    out = client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()
    assert out["status"] == "signed" and [i["status"] for i in out["items"]] == ["signed"] * 3
    first = out["items"][0]["document_id"]
    record = client.get(f"/api/v1/documents/{first}", headers=client_headers).json()
    assert record["dossier_number"] == "HS-0" and record["credential_id"] == specialist
    signed = client.get(f"/api/v1/documents/{first}/file", headers=client_headers).content
    [verdict] = validate_all(signed, root_pem(pki), ltv=False)
    assert verdict.bottom_line
    page = client.get("/me").text
    assert first in page and "Không có văn bản nào đang chờ" in page
    # approving again is refused: the request is closed
    frozen.next_step()
    again = client.post(f"/me/requests/{request_id}/approve", data={"pin": PIN, "otp": phone.code(),
                                                                    "seen": "yes", "csrf": csrf(page)})
    assert again.status_code == 409
    with transaction(pki.sessions) as session:
        actions = [a for (a,) in session.execute(select(audit.AuditEntry.action)
                                                 .where(audit.AuditEntry.subject == request_id))]
    assert actions == ["signing:request:submit", "signing:request:approve"]


def test_others_cannot_see_or_approve_a_request(client: TestClient, pki: Container, specialist: str,
                                                client_headers: dict[str, str], sample_pdf: bytes,
                                                frozen: FrozenClock) -> None:
    request_id = submit(client, client_headers, [sample_pdf], meta(specialist)).json()["id"]
    other_client = {"Authorization": f"Bearer {new_token(pki, tokens.Role.client)}"}
    hidden = client.get(f"/api/v1/sign/requests/{request_id}", headers=other_client)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "unknown_signing_request"
    assert client.get(f"/api/v1/sign/requests/{request_id}").status_code == 401
    # another specialist, signed in on their own page, does not see it and cannot approve it
    colleague = issue_credential(pki, name="Trần Văn Bình", id_number="001190000009")
    phone = enroll(pki, colleague, frozen)
    assert login(client, "001190000009", phone.code()).status_code == 303
    page = client.get("/me").text
    assert request_id not in page
    frozen.next_step()
    r = client.post(f"/me/requests/{request_id}/approve", data={"pin": PIN, "otp": phone.code(), "seen": "yes",
                                                                "csrf": csrf(page)})
    assert r.status_code == 404
    # without the session's CSRF token nothing happens, and without a session neither
    r = client.post(f"/me/requests/{request_id}/reject", data={"reason": "x"})
    assert r.status_code == 401 and "Phiên làm việc đã hết hạn" in r.text
    client.cookies.clear()
    r = client.post(f"/me/requests/{request_id}/reject", data={"reason": "x", "csrf": csrf(page)})
    assert r.status_code == 401
    client.cookies.set("kyso_me", "kyso_me_forged-token-AAAA", path="/me")
    assert 'name="pin"' in client.get("/me").text, "a forged cookie is no session"
    assert client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()["status"] == "pending"


def test_reject_and_what_a_request_refuses_at_submission(client: TestClient, pki: Container, specialist: str,
                                                         seal: str, client_headers: dict[str, str],
                                                         sample_pdf: bytes, frozen: FrozenClock) -> None:
    sealed = submit(client, client_headers, [sample_pdf], meta(seal))
    assert sealed.status_code == 422 and "organisation seal" in sealed.json()["error"]["message"]
    with_sad = submit(client, client_headers, [sample_pdf], meta(specialist, sad="kyso_sad_x"))
    assert with_sad.status_code == 422
    mixed = submit(client, client_headers, [sample_pdf] * 2, meta(specialist), [{}, {"credential_id": seal}])
    assert mixed.status_code == 422 and "same credential" in mixed.json()["error"]["message"]
    not_pdf = submit(client, client_headers, [b"GIF89a"], meta(specialist))
    assert not_pdf.status_code == 422
    other_commune = submit(client, client_headers, [sample_pdf], meta(specialist, commune_code="00008"))
    assert other_commune.status_code == 403 and other_commune.json()["error"]["code"] == "signing_refused"
    with transaction(pki.sessions) as session:
        assert session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.action == "signing:request:submit")).first() is None, "nothing stored"

    phone = enroll(pki, specialist, frozen)
    request_id = submit(client, client_headers, [sample_pdf], meta(specialist)).json()["id"]
    login(client, CCCD, phone.code())
    page = client.get("/me").text
    r = client.post(f"/me/requests/{request_id}/reject", data={"reason": "Sai họ tên", "csrf": csrf(page)},
                    follow_redirects=False)
    assert r.status_code == 303
    out = client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()
    assert out["status"] == "rejected" and out["reason"] == "Sai họ tên"
    assert client.get("/api/v1/documents", headers=client_headers).json()["total"] == 0


def test_change_pin_ends_the_session_and_the_old_pin_no_longer_signs_in(client: TestClient, pki: Container,
                                                                       specialist: str, frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    login(client, CCCD, phone.code())
    page = client.get("/me?lang=en").text
    assert "Change the PIN" in page and "Documents signed with your certificate" in page
    weak = client.post("/me/pin?lang=en", data={"old": PIN, "new": "111111", "csrf": csrf(page)})
    assert weak.status_code == 422 and "one digit repeated" in weak.text
    old_cookie = client.cookies.get("kyso_me")
    ok = client.post("/me/pin", data={"old": PIN, "new": "502914", "csrf": csrf(page)}, follow_redirects=False)
    assert ok.status_code == 303 and "m=pin_changed" in ok.headers["location"]
    # the session the PIN was changed in is over, even replayed by hand
    client.cookies.set("kyso_me", old_cookie or "", path="/me")
    assert 'name="identifier"' in client.get("/me").text
    client.cookies.clear()
    frozen.next_step()
    r = login(client, CCCD, phone.code(), pin=PIN)  # the old PIN
    assert r.status_code == 403 and "kyso_me=" not in r.headers.get("set-cookie", "")
    frozen.next_step()
    assert login(client, CCCD, phone.code(), pin="502914").status_code == 303
    assert factors.status(pki.pki, specialist).state == "active"
