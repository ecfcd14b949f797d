"""Enrolment by one-time code, sign-in by CCCD or username, throttling, sessions and CSRF on /me, and the
commune scope of activation state: each test is written as the attacker would try it."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.app import create_app
from api.container import Container
from core import audit
from core.db import transaction
from pki import issuance
from pki.names import SubjectInfo
from signing.activation import crypto as sec, enrolment, factors, throttle
from tests.helpers.activation import PIN, Phone, enroll, some_hashes
from tests.helpers.api import OTHER_COMMUNE, new_token, scoped
from tests.helpers.clock import FrozenClock
from tests.helpers.signing import COMMUNE, issue_credential

CCCD = "001190000001"  # the specialist fixture's id_number
HER, STRANGER = "198.51.100.7", "203.0.113.9"


def browser(pki: Container, address: str, base_url: str = "http://testserver") -> TestClient:
    return TestClient(create_app(pki, scheduler=False), raise_server_exceptions=False, client=(address, 50000),
                      base_url=base_url)


@pytest.fixture
def her(pki: Container) -> Iterator[TestClient]:
    with browser(pki, HER) as c:
        yield c


@pytest.fixture
def stranger(pki: Container) -> Iterator[TestClient]:
    with browser(pki, STRANGER) as c:
        yield c


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page's forms carry a CSRF token"
    return found.group(1)


def login(c: TestClient, identifier: str, otp: str, pin: str = PIN, csrf: str | None = None):  # type: ignore[no-untyped-def]
    token = form_token(c.get("/me").text) if csrf is None else csrf
    return c.post("/me/login", data={"identifier": identifier, "pin": pin, "otp": otp, "csrf": token},
                  follow_redirects=False)


def wrong(phone: Phone) -> str:
    return "000000" if phone.code() != "000000" else "111111"


def actions(pki: Container, prefix: str = "activation:") -> list[audit.AuditEntry]:
    with transaction(pki.sessions) as session:
        return [e for e in session.execute(select(audit.AuditEntry).order_by(audit.AuditEntry.seq)).scalars()
                if e.action.startswith(prefix)]


# -- enrolment by code -------------------------------------------------------------------------------
def test_she_enrols_on_her_phone_with_the_code_and_sees_the_key_as_qr_text_and_link(
        pki: Container, her: TestClient, specialist: str, operator_headers: dict[str, str], frozen: FrozenClock) -> None:
    issued = her.post(f"/api/v1/credentials/{specialist}/activation", headers=operator_headers).json()
    page = her.get("/me/enrol").text
    assert 'name="code"' in page and 'name="pin_again"' in page
    differ = her.post("/me/enrol", data={"code": issued["code"], "pin": PIN, "pin_again": "314159",
                                         "csrf": form_token(page)})
    assert differ.status_code == 422 and "không giống nhau" in differ.text
    typed = issued["code"].lower().replace("-", " ")  # typed on a phone: lower case, spaces
    shown = her.post("/me/enrol", data={"code": typed, "pin": PIN, "pin_again": PIN, "csrf": form_token(page)})
    assert shown.status_code == 200, shown.text
    assert "data:image/png;base64," in shown.text
    uri = re.search(r'href="(otpauth://totp/[^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    text_key = re.search(r'<code id="text-key"[^>]*>([A-Z2-7 ]+)</code>', shown.text).group(1)  # type: ignore[union-attr]
    secret = sec.secret_from_uri(uri.replace("&amp;", "&"))
    assert sec.secret_from_uri("otpauth://totp/x?secret=" + text_key.replace(" ", "")) == secret
    assert all(len(g) == 4 for g in text_key.split()[:-1])
    phone = Phone(secret, frozen)
    assert factors.status(pki.pki, specialist).state == "none", "nothing changes until she confirms"
    bad = her.post("/me/enrol/confirm", data={"code": typed, "otp": wrong(phone), "csrf": form_token(shown.text)})
    assert bad.status_code == 403 and 'name="otp"' in bad.text
    done = her.post("/me/enrol/confirm", data={"code": typed, "otp": phone.code(), "csrf": form_token(shown.text)},
                    follow_redirects=False)
    assert done.status_code == 303 and "m=enrolled" in done.headers["location"]
    assert factors.status(pki.pki, specialist).state == "active"
    frozen.next_step()
    assert login(her, CCCD, phone.code()).status_code == 303
    # the code is spent: a second redemption (the attacker who read it over her shoulder) is refused
    her.cookies.clear()
    page = her.get("/me/enrol").text
    again = her.post("/me/enrol", data={"code": issued["code"], "pin": "314159", "pin_again": "314159",
                                        "csrf": form_token(page)})
    assert again.status_code == 404 and "đã dùng" in again.text
    entries = actions(pki)
    assert [e.action for e in entries if e.action.startswith("activation:enrol")].count(
        "activation:enroll:confirm") == 1
    text = json.dumps([[e.action, e.details] for e in entries])
    assert issued["code"] not in text and enrolment.normalise(issued["code"]) not in text and PIN not in text


def test_expired_and_replaced_codes_are_refused(pki: Container, specialist: str, frozen: FrozenClock) -> None:
    old = enrolment.issue(pki.pki, specialist, "token:operator")
    new = enrolment.issue(pki.pki, specialist, "token:operator")
    with pytest.raises(enrolment.UnknownEnrolmentCode):
        enrolment.redeem(pki.pki, old.code, PIN, PIN)  # voided by the newer one
    frozen.advance(72 * 3600 + 1)
    with pytest.raises(enrolment.UnknownEnrolmentCode):
        enrolment.redeem(pki.pki, new.code, PIN, PIN)
    assert [e.action for e in actions(pki, "activation:enrol-code")] == [
        "activation:enrol-code:issue", "activation:enrol-code:issue", "activation:enrol-code:deny",
        "activation:enrol-code:deny"]


def test_a_redeemed_code_confirms_once_even_twice_at_once(pki: Container, specialist: str, frozen: FrozenClock) -> None:
    issued = enrolment.issue(pki.pki, specialist, "token:operator")
    phone = Phone(sec.secret_from_uri(enrolment.redeem(pki.pki, issued.code, PIN, PIN).uri), frozen)
    enrolment.finish(pki.pki, issued.code, phone.code())
    frozen.next_step()
    with pytest.raises(enrolment.UnknownEnrolmentCode):
        enrolment.finish(pki.pki, issued.code, phone.code())


def test_re_enrolment_keeps_her_factors_until_she_confirms_then_ends_her_sessions(
        pki: Container, her: TestClient, specialist: str, frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    assert login(her, CCCD, phone.code()).status_code == 303
    code = enrolment.issue(pki.pki, specialist, "token:operator").code  # the operator, for a "lost phone"
    frozen.next_step()
    factors.authorize(pki.pki, specialist, PIN, phone.code(), some_hashes(1), "sha256", 1, "token:x", purpose=factors.SADPurpose.HASH)
    assert "Đăng xuất" in her.get("/me").text, "an issued code changes nothing by itself"
    new_phone = Phone(sec.secret_from_uri(enrolment.redeem(pki.pki, code, "314159", "314159").uri), frozen)
    frozen.next_step()
    factors.authorize(pki.pki, specialist, PIN, phone.code(), some_hashes(1), "sha256", 1, "token:x", purpose=factors.SADPurpose.HASH)
    enrolment.finish(pki.pki, code, new_phone.code())
    assert 'name="identifier"' in her.get("/me").text, "the old session ended with the re-enrolment"
    frozen.next_step()
    with pytest.raises(factors.InvalidActivationData):
        factors.authorize(pki.pki, specialist, PIN, phone.code(), some_hashes(1), "sha256", 1, "token:x", purpose=factors.SADPurpose.HASH)


# -- sign-in: identifiers, equal answers, CSRF -----------------------------------------------------------
def _normal(page: str) -> str:
    page = re.sub(r'name="csrf" value="[^"]+"', "", page)
    return re.sub(r'id="identifier" name="identifier"[^>]*>', "", page)


def test_unknown_and_real_identifiers_get_the_same_answer(pki: Container, her: TestClient, specialist: str,
                                                          frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    real = login(her, CCCD, wrong(phone))
    unknown = login(her, "001190009999", wrong(phone))
    no_user = login(her, "nobody.here", wrong(phone))
    assert real.status_code == unknown.status_code == no_user.status_code == 403
    assert _normal(real.text) == _normal(unknown.text) == _normal(no_user.text)
    assert "attempt" not in real.text and "lần thử" not in real.text
    # the throttle treats them alike too: after 5 failures each, both are told to wait, in the same words
    for _ in range(4):
        frozen.next_step()
        login(her, CCCD, wrong(phone))
        login(her, "001190009999", wrong(phone))
    real, unknown = login(her, CCCD, wrong(phone)), login(her, "001190009999", wrong(phone))
    assert real.status_code == unknown.status_code == 429
    assert _normal(real.text) == _normal(unknown.text)
    denials = [e for e in actions(pki) if e.action == "activation:signin:deny"]
    assert all(e.actor == f"address:{HER}" for e in denials), "the audit names the address, never the victim"
    assert all(json.loads(e.details)["address"] == HER for e in denials)


def test_login_without_the_forms_csrf_token_is_refused(pki: Container, her: TestClient, specialist: str,
                                                       frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    no_token = her.post("/me/login", data={"identifier": CCCD, "pin": PIN, "otp": phone.code()},
                        follow_redirects=False)
    assert no_token.status_code == 403 and "kyso_me=" not in no_token.headers.get("set-cookie", "")
    with browser(pki, STRANGER) as evil:  # a token from another browser (the attacker's own page) does not fit
        forged = form_token(evil.get("/me").text)
    assert login(her, CCCD, phone.code(), csrf=forged).status_code == 403
    assert login(her, CCCD, phone.code()).status_code == 303


def test_sign_in_with_a_username_the_operator_set(pki: Container, her: TestClient, specialist: str,
                                                  operator_headers: dict[str, str], frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    base = f"/api/v1/credentials/{specialist}/activation"
    r = her.put(f"{base}/username", json={"username": "Hoa.Nguyen"}, headers=operator_headers)
    assert r.status_code == 200 and r.json()["username"] == "hoa.nguyen"
    other = issue_credential(pki, name="Trần Văn Bình", id_number="001190000002")
    taken = her.put(f"/api/v1/credentials/{other}/activation/username", json={"username": "hoa.nguyen"},
                    headers=operator_headers)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "username_taken"
    assert login(her, "HOA.nguyen", phone.code()).status_code == 303


def test_she_chooses_among_her_credentials_after_sign_in(pki: Container, her: TestClient, specialist: str,
                                                         frozen: FrozenClock) -> None:
    second = issue_credential(pki, commune=OTHER_COMMUNE)  # the same CCCD, a second commune
    phone = enroll(pki, specialist, frozen)
    enroll(pki, second, frozen, pin="592817")
    assert login(her, CCCD, phone.code()).status_code == 303
    page = her.get("/me").text
    assert specialist in page and f'value="{second}"' in page
    switched = her.post("/me/choose", data={"credential_id": second, "csrf": form_token(page)}, follow_redirects=False)
    assert switched.status_code == 303
    page = her.get("/me").text
    assert f"<dd>{second}</dd>" in page
    stranger_cred = issue_credential(pki, name="Trần Văn Bình", id_number="001190000002")
    her.post("/me/choose", data={"credential_id": stranger_cred, "csrf": form_token(page)})
    assert f"<dd>{second}</dd>" in her.get("/me").text, "someone else's credential cannot be chosen"


# -- throttling instead of lockout ---------------------------------------------------------------------
def test_a_strangers_failures_do_not_stop_her_signing_in(pki: Container, her: TestClient, stranger: TestClient,
                                                         specialist: str, frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    assert login(her, CCCD, phone.code()).status_code == 303  # her phone's address is now a known one
    her.post("/me/logout", data={"csrf": form_token(her.get("/me").text)})
    answers = []
    for _ in range(40):  # a stranger hammers her CCCD for ten minutes
        frozen.advance(15)
        answers.append(login(stranger, CCCD, "123456", pin="999999").status_code)
    assert answers[:5] == [403] * 5 and 429 in answers
    frozen.next_step()
    assert login(her, CCCD, phone.code()).status_code == 303, "she signs in from her own address at once"
    assert factors.status(pki.pki, specialist).state == "active"
    frozen.next_step()
    factors.authorize(pki.pki, specialist, PIN, phone.code(), some_hashes(1), "sha256", 1, "token:x", address=HER, purpose=factors.SADPurpose.HASH)


def test_the_hard_lock_comes_only_after_many_failures_and_ends_her_sessions(
        pki: Container, her: TestClient, specialist: str, frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    assert pki.settings.activation_lock_after == 100
    assert login(her, CCCD, phone.code()).status_code == 303
    pki.settings.activation_lock_after = 12
    for n in range(12):
        frozen.advance(900)  # the throttle's longest wait
        with pytest.raises((factors.InvalidActivationData, factors.CredentialLocked)):
            factors.authorize(pki.pki, specialist, "999999", "000000", some_hashes(1), "sha256", 1, "token:x",
                              address=f"192.0.2.{n}", purpose=factors.SADPurpose.HASH)
    assert factors.status(pki.pki, specialist).state == "locked"
    assert 'name="identifier"' in her.get("/me").text, "the lock ended her session"
    lock = [e for e in actions(pki) if e.action == "activation:credential:lock"]
    assert len(lock) == 1 and json.loads(lock[0].details)["address"] == "192.0.2.11"


def test_throttle_waits_grow_and_are_capped(pki: Container) -> None:
    keys = throttle.Keys("cred:x", "192.0.2.1")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with transaction(pki.sessions) as session:
        for _ in range(5):
            throttle.fail(session, keys, now)
        assert throttle.wait(session, keys, pki.settings, now) == 1
        throttle.fail(session, keys, now)
        assert throttle.wait(session, keys, pki.settings, now) == 2
        for _ in range(30):
            throttle.fail(session, keys, now)
        assert throttle.wait(session, keys, pki.settings, now) == pki.settings.activation_throttle_cap_seconds
        other = throttle.Keys("cred:x", "192.0.2.2")
        assert throttle.wait(session, other, pki.settings, now) > 0, "the person's own count applies elsewhere"
        throttle.succeed(session, throttle.Keys("cred:x", "192.0.2.3"))
        assert throttle.wait(session, throttle.Keys("cred:x", "192.0.2.3"), pki.settings, now) == 0


# -- sessions ------------------------------------------------------------------------------------------
def test_the_old_cookie_is_refused_after_logout(pki: Container, her: TestClient, specialist: str,
                                                frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    assert login(her, CCCD, phone.code()).status_code == 303
    cookie = her.cookies.get("kyso_me")
    assert cookie and specialist not in cookie, "the cookie is a random token, not the credential"
    her.post("/me/logout", data={"csrf": form_token(her.get("/me").text)})
    her.cookies.set("kyso_me", cookie, path="/me")
    assert 'name="identifier"' in her.get("/me").text


def test_cookies_are_secure_behind_an_https_proxy(pki: Container, specialist: str, frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    pki.settings.trusted_proxies = ["10.0.0.0/8"]
    with browser(pki, "10.0.0.1") as proxy:
        page = proxy.get("/me", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": HER})
        assert "Secure" in page.headers["set-cookie"]
        pre = re.search(r"kyso_me_form=([^;]+)", page.headers["set-cookie"]).group(1)  # type: ignore[union-attr]
        r = proxy.post("/me/login", data={"identifier": CCCD, "pin": PIN, "otp": phone.code(),
                                          "csrf": form_token(page.text)}, follow_redirects=False,
                       headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": HER,
                                "Cookie": f"kyso_me_form={pre}"})  # the browser sends Secure cookies over https
        cookie = r.headers["set-cookie"]
        assert r.status_code == 303 and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    grant = [e for e in actions(pki) if e.action == "activation:signin:grant"][-1]
    assert json.loads(grant.details)["address"] == HER, "the address is the one the trusted proxy saw"
    with browser(pki, STRANGER) as direct:  # the header from anyone else is not believed
        assert "Secure" not in direct.get("/me", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]


# -- commune scope ---------------------------------------------------------------------------------------
def test_another_communes_reader_cannot_read_activation_state(pki: Container, client: TestClient,
                                                              specialist: str) -> None:
    base = f"/api/v1/credentials/{specialist}/activation"
    mine = scoped(pki, "ba-dinh", communes=[COMMUNE])
    theirs = scoped(pki, "neighbour", communes=[OTHER_COMMUNE])
    assert client.get(base, headers=mine).status_code == 200
    hidden = client.get(base, headers=theirs)
    unknown = client.get("/api/v1/credentials/cred_000000000000000000000000/activation", headers=theirs)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["error"]["code"] == unknown.json()["error"]["code"]
    reader = {"Authorization": f"Bearer {new_token(pki, tokens.Role.read_only)}"}
    assert client.get(base, headers=reader).status_code == 200


def test_the_session_ends_when_her_certificate_is_revoked(pki: Container, her: TestClient, specialist: str,
                                                          frozen: FrozenClock) -> None:
    from pki import revocation
    from pki.reasons import Reason
    from pki.store import get_credential

    phone = enroll(pki, specialist, frozen)
    assert login(her, CCCD, phone.code()).status_code == 303
    with transaction(pki.sessions) as session:
        serial = get_credential(session, specialist).certificate.serial  # type: ignore[union-attr]
    revocation.revoke(pki.pki, serial, Reason.keyCompromise, "token:operator")
    assert 'name="identifier"' in her.get("/me").text


def test_a_name_field_spelling_her_cccd_does_not_make_him_her(pki: Container, her: TestClient, stranger: TestClient,
                                                              specialist: str, frozen: FrozenClock) -> None:
    """The attacker's certificate carries his own CCCD and, in a free-text attribute, ',2.5.4.5=IDCVN-<hers>':
    the stored RFC 4514 subject escapes that comma (``\\,``), so it is text, not a serialNumber. Read naively, he
    becomes her 'person': signs in with her CCCD and his own PIN, then chooses her credential and reads her page."""
    enroll(pki, specialist, frozen)
    subject = SubjectInfo(common_name="Trần Văn Kẻ", id_number="001190000002", email=f"ke,2.5.4.5=IDCVN-{CCCD}")
    his = issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=subject, commune_code=COMMUNE),
                         actor="test").credential_id
    assert his is not None
    phone = enroll(pki, his, frozen, pin="592817")
    assert login(stranger, CCCD, phone.code(), pin="592817").status_code == 403, "her CCCD does not name him"
    frozen.next_step()
    assert login(stranger, "001190000002", phone.code(), pin="592817").status_code == 303, "his own CCCD does"
    page = stranger.get("/me").text
    assert f'value="{specialist}"' not in page
    stranger.post("/me/choose", data={"credential_id": specialist, "csrf": form_token(page)})
    page = stranger.get("/me").text
    assert f"<dd>{his}</dd>" in page and specialist not in page, "her credential cannot be chosen"


def test_sign_in_spends_the_same_pin_work_whether_the_pin_is_right_or_not(
        pki: Container, specialist: str, frozen: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer never says which factor was wrong; the time must not either. The PIN hash (scrypt) is the
    work that shows: counted here around the real function, a right PIN with a wrong code must cost what a
    wrong PIN costs (it cost one hash more: a PIN oracle without the phone)."""
    phone = enroll(pki, specialist, frozen)
    hashed: list[int] = []
    real = sec.hash_pin

    def counted(pin: str, salt: bytes, keys: sec.ActivationKeys) -> bytes:
        hashed.append(1)
        return real(pin, salt, keys)

    monkeypatch.setattr(sec, "hash_pin", counted)

    def work(identifier: str, pin: str) -> int:
        hashed.clear()
        frozen.next_step()
        with pytest.raises(factors.InvalidActivationData):
            factors.sign_in(pki.pki, identifier, pin, wrong(phone), address=HER)
        return len(hashed)

    assert work(CCCD, PIN) == work(CCCD, "918273") == work("001190009999", PIN) == 1


def test_what_she_typed_as_identifier_is_not_left_guessable_in_the_audit_log(
        pki: Container, specialist: str, frozen: FrozenClock) -> None:
    """An identifier that names nobody (her PIN typed in the wrong field, a mistyped CCCD) is kept only as a
    hash, in the throttle table and as the denial's subject. Plain SHA-256 of six digits is undone by trying a
    million; keyed with the server's secret it is not, and it still counts the same typing alike."""
    phone = enroll(pki, specialist, frozen)
    for typed in (PIN, PIN):
        frozen.next_step()
        with pytest.raises(factors.InvalidActivationData):
            factors.sign_in(pki.pki, typed, PIN, phone.code(), address=HER)
    subjects = [e.subject for e in actions(pki) if e.action == "activation:signin:deny"]
    assert len(subjects) == 2 and subjects[0] == subjects[1] and subjects[0].startswith("who:")
    # what anyone holding the export could try for each of the million six-digit PINs
    assert subjects[0] != "who:" + hashlib.sha256(PIN.encode()).hexdigest()[:32], "the PIN reads back"
