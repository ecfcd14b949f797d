"""The CSC API v2 over HTTP (TestClient): v1 and v2 field names, SAD rules, batches, RSA schemes, CSC errors."""
from __future__ import annotations

import base64
import re

import pytest
from asn1crypto import algos
from cryptography import x509
from cryptography.hazmat.primitives import hashes as chashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core.db import transaction
from hsm import KeyType
from signing.activation import enrolment
from signing.activation.models import EnrolmentCode
from tests.helpers.activation import PIN, Phone, enroll, some_hashes
from tests.helpers.api import new_token
from tests.helpers.clock import FrozenClock
from tests.helpers.signing import issue_credential

SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_SHA256 = "1.2.840.113549.1.1.11"
RSA_PSS = "1.2.840.113549.1.1.10"
ROUTES = ["auth/login", "credentials/list", "credentials/info", "credentials/authorize",
          "credentials/extendTransaction", "signatures/signHash"]


def b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


@pytest.fixture
def client_auth(pki: Container) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(pki, tokens.Role.client)}"}


def authorize(client: TestClient, headers: dict[str, str], credential: str, phone: Phone, hashes: list[bytes],
              *, v2: bool = True, pin: str = PIN) -> str:
    if v2:
        body = {"credentialID": credential, "numSignatures": len(hashes), "hashes": b64(hashes),
                "hashAlgorithmOID": SHA256, "authData": [{"id": "PIN", "value": pin}, {"id": "OTP", "value": phone.code()}]}
    else:  # what pyHanko's CSCAuthorizationManager.format_csc_auth_request sends
        body = {"credentialID": credential, "numSignatures": len(hashes), "hash": b64(hashes), "PIN": pin,
                "OTP": phone.code()}
    r = client.post("/csc/v2/credentials/authorize", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert 0 < r.json()["expiresIn"] <= 300
    return r.json()["SAD"]


def sign_hash(client: TestClient, headers: dict[str, str], credential: str, sad: str, hashes: list[bytes],
              sign_algo: str = ECDSA_SHA256, **extra: object):  # type: ignore[no-untyped-def]
    return client.post("/csc/v2/signatures/signHash", headers=headers, json={
        "credentialID": credential, "SAD": sad, "hashes": b64(hashes), "hashAlgorithmOID": SHA256,
        "signAlgo": sign_algo, **extra})


def certificate(client: TestClient, headers: dict[str, str], credential: str) -> x509.Certificate:
    r = client.post("/csc/v2/credentials/info", json={"credentialID": credential}, headers=headers)
    return x509.load_der_x509_certificate(base64.b64decode(r.json()["cert"]["certificates"][0]))


def test_info_is_public_and_names_the_methods(client: TestClient) -> None:
    for r in (client.get("/csc/v2/info"), client.post("/csc/v2/info", json={})):
        assert r.status_code == 200
        assert set(ROUTES) <= set(r.json()["methods"]) and r.json()["specs"].startswith("2.")


@pytest.mark.parametrize("auth", [None, "Bearer kyso_" + "C" * 43, "Basic dXNlcjpwYXNz"])
def test_every_route_refuses_a_missing_or_bad_token_in_csc_format(client: TestClient, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    for route in ROUTES:
        for body in ({}, {"credentialID": "x", "SAD": "y"}, None):
            r = client.post(f"/csc/v2/{route}", json=body, headers=headers)
            assert r.status_code == 401, (route, r.status_code, r.text)
            assert r.json()["error"] == "invalid_token" and r.json()["error_description"]
            assert r.headers["WWW-Authenticate"] == "Bearer"


def test_other_roles_are_refused(client: TestClient, pki: Container) -> None:
    headers = {"Authorization": f"Bearer {new_token(pki, tokens.Role.auditor)}"}
    r = client.post("/csc/v2/credentials/list", json={}, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "access_denied"


def test_login_list_and_info(client: TestClient, pki: Container, client_auth: dict[str, str],
                             enrolled: tuple[str, Phone]) -> None:
    credential, _ = enrolled
    pending = issue_credential(pki, name="Trần Văn Bình", id_number="001190000002")  # not enrolled: not listed
    r = client.post("/csc/v2/auth/login", json={}, headers=client_auth)
    assert r.json()["access_token"] == client_auth["Authorization"].split()[1]
    r = client.post("/csc/v2/credentials/list", json={}, headers=client_auth)
    assert r.status_code == 200 and r.json()["credentialIDs"] == [credential] and pending != credential
    r = client.post("/csc/v2/credentials/info", headers=client_auth,
                    json={"credentialID": credential, "certificates": "chain", "certInfo": False})  # pyHanko's request
    info = r.json()
    assert r.status_code == 200 and info["authMode"] == "explicit" and info["SCAL"] == "2"
    assert info["key"] == {"status": "enabled", "algo": info["key"]["algo"], "len": 256, "curve": "1.2.840.10045.3.1.7"}
    assert {algos.SignedDigestAlgorithmId(o).native for o in info["key"]["algo"]} >= {"sha256_ecdsa", "sha384_ecdsa"}
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in info["cert"]["certificates"]]
    assert len(chain) == 3 and chain[1].subject == chain[0].issuer and chain[2].subject == chain[2].issuer
    assert info["PIN"]["presence"] == "true" and info["OTP"]["type"] == "offline"
    assert [o["id"] for o in info["auth"]["objects"]] == ["PIN", "OTP"] and info["auth"]["expression"] == "PIN AND OTP"
    assert info["multisign"] >= 10
    r = client.post("/csc/v2/credentials/info", headers=client_auth, json={"credentialID": pending, "certInfo": True})
    assert r.json()["key"]["status"] == "disabled" and len(r.json()["cert"]["certificates"]) == 1
    assert re.fullmatch(r"\d{14}Z", r.json()["cert"]["validTo"])


def test_sign_hash_once_then_refused(client: TestClient, client_auth: dict[str, str],
                                     enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(1)
    sad = authorize(client, client_auth, credential, phone, hashes, v2=False)
    r = sign_hash(client, client_auth, credential, sad, hashes)
    assert r.status_code == 200, r.text
    [signature] = [base64.b64decode(s) for s in r.json()["signatures"]]
    certificate(client, client_auth, credential).public_key().verify(  # type: ignore[call-arg]
        signature, hashes[0], ec.ECDSA(utils.Prehashed(chashes.SHA256())))
    r = sign_hash(client, client_auth, credential, sad, hashes)
    assert r.status_code == 403 and r.json() == {"error": "invalid_sad",
                                                 "error_description": "this SAD was already used; authorize again"}


def test_expired_and_mismatched_sads_are_refused(client: TestClient, client_auth: dict[str, str],
                                                 enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(1)
    sad = authorize(client, client_auth, credential, phone, hashes)
    r = sign_hash(client, client_auth, credential, sad, some_hashes(1))
    assert r.status_code == 403 and "not one this SAD" in r.json()["error_description"]
    frozen.advance(301)
    r = sign_hash(client, client_auth, credential, sad, hashes)
    assert r.status_code == 403 and "expired" in r.json()["error_description"]


def test_a_batch_sad_signs_ten_hashes_in_one_call(client: TestClient, client_auth: dict[str, str],
                                                  enrolled: tuple[str, Phone]) -> None:
    credential, phone = enrolled
    hashes = some_hashes(10)
    sad = authorize(client, client_auth, credential, phone, hashes)
    r = client.post("/csc/v2/signatures/signHash", headers=client_auth, json={  # v1 names, as pyHanko sends them
        "credentialID": credential, "SAD": sad, "hash": b64(hashes), "hashAlgo": SHA256, "signAlgo": ECDSA_SHA256})
    assert r.status_code == 200, r.text
    signatures = [base64.b64decode(s) for s in r.json()["signatures"]]
    key = certificate(client, client_auth, credential).public_key()
    assert len(signatures) == 10
    for digest, signature in zip(hashes, signatures):
        key.verify(signature, digest, ec.ECDSA(utils.Prehashed(chashes.SHA256())))  # type: ignore[call-arg]


def test_wrong_pins_over_http_are_throttled_then_locked(client: TestClient, pki: Container,
                                                        client_auth: dict[str, str], enrolled: tuple[str, Phone],
                                                        frozen: FrozenClock) -> None:
    credential, phone = enrolled
    pki.settings.activation_lock_after = 10
    body = lambda pin: {"credentialID": credential, "numSignatures": 1, "hash": b64(some_hashes(1)),
                        "PIN": pin, "OTP": phone.code()}
    for _ in range(5):
        frozen.next_step()
        r = client.post("/csc/v2/credentials/authorize", json=body("999999"), headers=client_auth)
        assert r.status_code == 403 and r.json()["error"] == "invalid_activation_data"
    # the sixth attempt within a second of the fifth failure is not even checked: the throttle answers 429
    r = client.post("/csc/v2/credentials/authorize", json=body(PIN), headers=client_auth)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    frozen.next_step()  # the wait passed: her right PIN works, the count starts again
    assert client.post("/csc/v2/credentials/authorize", json=body(PIN), headers=client_auth).status_code == 200
    for attempt in range(10):
        frozen.next_step()
        r = client.post("/csc/v2/credentials/authorize", json=body("999999"), headers=client_auth)
        assert r.status_code == 403
        assert r.json()["error"] == ("credential_locked" if attempt == 9 else "invalid_activation_data")
    frozen.advance(60)
    r = client.post("/csc/v2/credentials/authorize", json=body(PIN), headers=client_auth)
    assert r.status_code == 403 and r.json()["error"] == "credential_locked"
    assert client.post("/csc/v2/credentials/list", json={}, headers=client_auth).json()["credentialIDs"] == []
    operator = {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator)}"}
    assert client.post(f"/api/v1/credentials/{credential}/activation/unlock", headers=operator).json()["state"] == "active"
    frozen.next_step()
    assert client.post("/csc/v2/credentials/authorize", json=body(PIN), headers=client_auth).status_code == 200


def test_sad_is_bound_to_the_client_that_asked(client: TestClient, pki: Container, client_auth: dict[str, str],
                                               enrolled: tuple[str, Phone]) -> None:
    credential, phone = enrolled
    hashes = some_hashes(1)
    sad = authorize(client, client_auth, credential, phone, hashes)
    other = {"Authorization": f"Bearer {new_token(pki, tokens.Role.client)}"}
    assert sign_hash(client, other, credential, sad, hashes).status_code == 403
    assert sign_hash(client, client_auth, credential, sad, hashes).status_code == 200


def test_extend_transaction(client: TestClient, client_auth: dict[str, str], enrolled: tuple[str, Phone],
                            frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(2)
    sad = authorize(client, client_auth, credential, phone, hashes)
    frozen.advance(200)
    r = client.post("/csc/v2/credentials/extendTransaction", headers=client_auth,
                    json={"credentialID": credential, "SAD": sad, "hash": b64(hashes)})
    assert r.status_code == 200 and r.json()["expiresIn"] == 300
    frozen.advance(200)
    assert sign_hash(client, client_auth, credential, sad, hashes).status_code == 403
    assert sign_hash(client, client_auth, credential, r.json()["SAD"], hashes).status_code == 200


def test_out_of_scope_credential_is_refused(client: TestClient, pki: Container, enrolled: tuple[str, Phone]) -> None:
    from core.db import transaction

    credential, _ = enrolled
    with transaction(pki.sessions) as session:
        scope = tokens.build_scope(session, units=["00008"])
        token = tokens.create(session, "other-commune", tokens.Role.client, "test", scope=scope)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/csc/v2/credentials/list", json={}, headers=headers).json()["credentialIDs"] == []
    r = client.post("/csc/v2/credentials/info", json={"credentialID": credential}, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "access_denied"


def test_malformed_requests_are_400_never_500(client: TestClient, client_auth: dict[str, str],
                                              enrolled: tuple[str, Phone]) -> None:
    credential, _ = enrolled
    h = b64(some_hashes(1))
    cases = [
        ("credentials/authorize", {"credentialID": credential, "numSignatures": 1, "hash": ["@@"], "PIN": PIN, "OTP": "1"}),
        ("credentials/authorize", {"credentialID": credential, "numSignatures": 1, "hash": h, "PIN": PIN}),
        ("credentials/authorize", {"credentialID": credential, "numSignatures": 1, "PIN": PIN, "OTP": "123456"}),
        ("credentials/authorize", {"credentialID": credential, "numSignatures": 1, "hash": h, "PIN": PIN,
                                   "OTP": "1", "surprise": True}),
        ("signatures/signHash", {"credentialID": credential, "SAD": "x", "hash": h, "signAlgo": "1.2.3.4"}),
        ("signatures/signHash", {"credentialID": credential, "SAD": "x", "hash": h, "signAlgo": RSA_SHA256}),
        ("signatures/signHash", {"credentialID": credential, "SAD": "x", "hash": h, "signAlgo": ECDSA_SHA256,
                                 "operationMode": "A"}),
        ("credentials/list", {"userID": "someone"}),
    ]
    for route, body in cases:
        r = client.post(f"/csc/v2/{route}", json=body, headers=client_auth)
        assert r.status_code == 400, (route, body, r.text)
        assert set(r.json()) == {"error", "error_description"}
    r = client.post("/csc/v2/credentials/info", json={"credentialID": "cred_nope"}, headers=client_auth)
    assert r.status_code == 404 and set(r.json()) == {"error", "error_description"}


@pytest.mark.parametrize("scheme", ["pkcs1v15", "pss"])
def test_rsa_credentials_sign_pkcs1v15_and_pss(client: TestClient, pki: Container, client_auth: dict[str, str],
                                               frozen: FrozenClock, scheme: str) -> None:
    credential = issue_credential(pki, key_type=KeyType.RSA_2048, name="Lê Văn Cường", id_number="001190000003")
    phone = enroll(pki, credential, frozen)
    hashes = some_hashes(2)
    sad = authorize(client, client_auth, credential, phone, hashes)
    key = certificate(client, client_auth, credential).public_key()
    if scheme == "pss":
        wrong = algos.RSASSAPSSParams({"hash_algorithm": {"algorithm": "sha256"}, "mask_gen_algorithm": {
            "algorithm": "mgf1", "parameters": {"algorithm": "sha256"}}, "salt_length": 222}).dump()
        r = sign_hash(client, client_auth, credential, sad, hashes, RSA_PSS, signAlgoParams=base64.b64encode(wrong).decode())
        assert r.status_code == 400 and "salt" in r.json()["error_description"]  # refused before the SAD is spent
        params = algos.RSASSAPSSParams({"hash_algorithm": {"algorithm": "sha256"}, "mask_gen_algorithm": {
            "algorithm": "mgf1", "parameters": {"algorithm": "sha256"}}, "salt_length": 32}).dump()
        r = sign_hash(client, client_auth, credential, sad, hashes, RSA_PSS, signAlgoParams=base64.b64encode(params).decode())
        pad: padding.AsymmetricPadding = padding.PSS(padding.MGF1(chashes.SHA256()), 32)
    else:
        r = sign_hash(client, client_auth, credential, sad, hashes, RSA_SHA256)
        pad = padding.PKCS1v15()
    assert r.status_code == 200, r.text
    for digest, signature in zip(hashes, r.json()["signatures"]):
        key.verify(base64.b64decode(signature), digest, pad, utils.Prehashed(chashes.SHA256()))  # type: ignore[call-arg]


def test_operator_enrolment_over_rest_returns_a_code_and_never_a_secret(client: TestClient, pki: Container,
                                                                         specialist: str, frozen: FrozenClock) -> None:
    operator = {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator)}"}
    base = f"/api/v1/credentials/{specialist}/activation"
    assert client.get(base, headers=operator).json()["state"] == "none"
    client_only = {"Authorization": f"Bearer {new_token(pki, tokens.Role.client)}"}
    assert client.post(base, headers=client_only).status_code == 403  # operators issue codes
    assert client.post(base, json={"pin": PIN}, headers=operator).status_code == 422, "an operator cannot set a PIN"
    r = client.post(base, headers=operator)
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == {"credential_id", "code", "purpose", "expires_at", "enrol_url", "instructions"}
    assert re.fullmatch(r"[2-9A-HJKMNP-TW-Z]{4}(-[2-9A-HJKMNP-TW-Z]{4}){3}", out["code"]), out["code"]
    assert "otpauth" not in r.text.lower() and "secret" not in r.text.lower() and out["purpose"] == "enrol"
    assert out["enrol_url"].endswith("/me/enrol")
    assert client.post(f"{base}/confirm", json={"code": "123456"}, headers=operator).status_code in (404, 405)
    assert client.post(f"{base}/pin", json={"old_pin": PIN, "new_pin": "314159"}, headers=operator).status_code \
        in (404, 405)
    # the code is stored as its hash only
    with transaction(pki.sessions) as session:
        rows = session.execute(select(EnrolmentCode)).scalars().all()
    assert [r.credential_id for r in rows] == [specialist]
    assert all(out["code"] not in r.id and enrolment.normalise(out["code"]) not in r.id for r in rows)
