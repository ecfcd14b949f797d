"""The offline seal in the verification QR code: read back with pdftoppm + zbarimg (tools nobody here
wrote), verified with ``cryptography`` against the published keys, and refused when anything was changed."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlalchemy import func, select

from api.container import Container
from api.scheduler import republish_once
from core import clock
from core.audit import AuditEntry
from core.db import transaction
from hsm import SignatureScheme
from pki import revocation, store
from pki.authorities import ensure_qr_seal, init_hierarchy
from pki.reasons import Reason
from policies.documents import load as load_policy
from policies.errors import PolicyInvalid
from signing.create import offline_seal
from signing.create.offline_seal import SealFacts
from signing.create.service import AppearanceOptions, SignRequest
from signing.create.visible import (
    LEGACY_OFFLINE_WIDTH,
    LEGACY_QR_SIZE,
    PERSON_SIZE,
    QR_COLUMN,
    QR_GAP,
    QR_SIZE,
    _qr_code,
    _qr_column,
)
from signing.errors import SealFieldsInvalid
from signing.registry.models import SignedDocument
from tests.helpers.db import ISSUING, ROOT
from tests.helpers.qr import scan
from tests.helpers.signing import COMMUNE, CONSENTED, issue_credential
from tests.interop.pdf_tools import tool

OWNER = "Nguyễn Thị Hồng Nhung"
PERMIT = {"permit_no": "125/GPXD-UBND", "owner": OWNER, "site": "Số 12 phố Kim Mã, phường Ba Đình"}


def permit(pdf: bytes, credential: str, fields: dict[str, str], **extra: object) -> SignRequest:
    return SignRequest(pdf=pdf, document_type="construction-permit", commune_code=COMMUNE, credential_id=credential,
                       level="B-T", seal_fields=fields, **extra)  # type: ignore[arg-type]


def qr_text(pdf: bytes, tmp_path: Path, page: int) -> list[str]:
    (tmp_path / "doc.pdf").write_bytes(pdf)
    subprocess.run([tool("pdftoppm", "poppler-utils"), "-r", "150", "-png", "-f", str(page), "-l", str(page),
                    "-singlefile", str(tmp_path / "doc.pdf"), str(tmp_path / "page")], check=True, timeout=60)
    return scan(tmp_path / "page.png")


def documents(container: Container) -> int:
    with transaction(container.sessions) as session:
        return session.execute(select(func.count()).select_from(SignedDocument)).scalar_one()


def seal_rows(container: Container):  # type: ignore[no-untyped-def]
    with transaction(container.sessions) as session:
        return store.qr_seal_certificates(session)


def forged(token: str, **changes: object) -> str:
    """The same signature over a payload re-encoded with ``changes`` (facts fields or ``kid``)."""
    parsed = offline_seal.parse(token)
    kid = str(changes.pop("kid", parsed.kid))
    facts = dataclasses.replace(parsed.facts, **changes)  # type: ignore[arg-type]
    if token.startswith(offline_seal.PREFIX2):
        return offline_seal.token2(offline_seal.encode2(facts, kid), parsed.signature)
    return offline_seal.b64url(offline_seal.encode(facts, kid)) + "." + offline_seal.b64url(parsed.signature)


# -- end to end: sign, print, scan, verify --------------------------------------------------------------
def test_permit_qr_carries_a_seal_that_verifies_and_detects_changes(pki: Container, specialist: str,
                                                                   sample_pdf: bytes, tmp_path: Path) -> None:
    result = pki.signing.sign(permit(sample_pdf, specialist, PERMIT), actor="test", activation=CONSENTED)
    [scanned] = qr_text(result.pdf, tmp_path, 4)
    url, _, token = scanned.partition("#")
    assert url == f"{pki.settings.base_url}/v/{result.document_id}"
    assert token == result.offline_seal
    with transaction(pki.sessions) as session:
        assert session.get(SignedDocument, result.document_id).offline_seal == token  # type: ignore[union-attr]

    keys = offline_seal.public_keys(pki.pki)
    check = offline_seal.verify(token, result.document_id, keys)
    assert (check.ok, check.reason) == (True, "ok"), check
    assert check.facts == SealFacts(result.document_id, "construction-permit", COMMUNE,
                                    result.signed_at.astimezone(offline_seal.VIETNAM).date(),
                                    (("permit_no", "125/GPXD-UBND"), ("owner", OWNER),
                                     ("site", "Số 12 phố Kim Mã, phường Ba Đình")))
    [key] = keys
    assert check.kid == key["kid"] and key["alg"] == "ES256" and key["status"] == "valid"

    # the browser's view of the same check: the JWK, the P1363 signature and the payload bytes
    numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(offline_seal.b64url_decode(key["jwk"]["x"]), "big"),
                                            int.from_bytes(offline_seal.b64url_decode(key["jwk"]["y"]), "big"),
                                            ec.SECP256R1())
    with transaction(pki.sessions) as session:
        cert = x509.load_der_x509_certificate(store.current_qr_seal(session).der)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert numbers.public_key() == cert.public_key()
    assert key["kid"] == offline_seal.b64url(hashlib.sha256(spki).digest()[:6]) and len(key["kid"]) == 8

    altered = forged(token, fields=(("permit_no", "125/GPXD-UBND"), ("owner", "Trần Văn Bình"),
                                    ("site", "Số 12 phố Kim Mã, phường Ba Đình")))
    assert offline_seal.verify(altered, result.document_id, keys).reason == "bad_signature"
    other_day = forged(token, date=check.facts.date + dt.timedelta(days=1))  # type: ignore[union-attr]
    assert offline_seal.verify(other_day, result.document_id, keys).reason == "bad_signature"
    assert offline_seal.verify(token, "ABCDEFGHJKLM", keys).reason == "wrong_document"
    moved = forged(token, document_id="ABCDEFGHJKLM")
    assert offline_seal.verify(moved, "ABCDEFGHJKLM", keys).reason == "bad_signature"
    stranger = forged(token, kid="AAAAAAAA")
    assert offline_seal.verify(stranger, result.document_id, keys).reason == "unknown_kid"
    assert offline_seal.verify(token, result.document_id, []).reason == "unknown_kid"
    assert offline_seal.verify(scanned, result.document_id, keys).ok, "the whole QR text is accepted too"


def test_wrong_seal_fields_are_refused_before_signing(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    cases = [
        ({"permit_no": "1/GPXD"}, "'owner'.*required"),
        ({**PERMIT, "colour": "red"}, "unknown seal field.*'colour'.*allowed: permit_no, owner, site"),
        ({**PERMIT, "owner": "x" * 81}, "81 characters.*at most 80"),
        ({**PERMIT, "owner": " \t\n"}, "'owner'.*required"),
    ]
    for fields, words in cases:
        with pytest.raises(SealFieldsInvalid, match=words) as info:
            pki.signing.sign(permit(sample_pdf, specialist, fields), actor="test", activation=CONSENTED)
        assert info.value.code == "seal_fields_invalid"
    with pytest.raises(SealFieldsInvalid, match="civil-status-extract-birth.*allowed: none"):
        pki.signing.sign(SignRequest(pdf=sample_pdf, document_type="civil-status-extract-birth", commune_code=COMMUNE,
                                     credential_id=specialist, level="B-B", seal_fields={"holder": "A"}), actor="test", activation=CONSENTED)
    assert documents(pki) == 0, "nothing registered"
    ok = pki.signing.sign(permit(sample_pdf, specialist, {**PERMIT, "owner": "x" * 80}), actor="test", activation=CONSENTED)
    assert offline_seal.parse(ok.offline_seal or "").facts.field("owner") == "x" * 80


def test_no_token_without_a_printed_qr(pki: Container, specialist: str, seal: str, sample_pdf: bytes) -> None:
    hidden = pki.signing.sign(permit(sample_pdf, specialist, PERMIT, appearance=AppearanceOptions(visible=False)),
                              actor="test", activation=CONSENTED)
    assert hidden.offline_seal is None
    no_qr = pki.signing.sign(SignRequest(pdf=sample_pdf, document_type="civil-status-extract-birth",
                                         commune_code=COMMUNE, credential_id=specialist, level="B-B"), actor="test", activation=CONSENTED)
    assert no_qr.offline_seal is None
    first = pki.signing.sign(permit(sample_pdf, specialist, PERMIT), actor="test", activation=CONSENTED)
    sealed = pki.signing.sign(permit(first.pdf, seal, {}), actor="test", activation=CONSENTED)  # the agency seal draws no QR
    assert sealed.document_id == first.document_id and sealed.offline_seal == first.offline_seal
    replay_key = "seal-replay"
    once = pki.signing.sign(permit(sample_pdf, specialist, {**PERMIT, "site": "khác"}), actor="test",
                            idempotency_key=replay_key, activation=CONSENTED)
    again = pki.signing.sign(permit(sample_pdf, specialist, {**PERMIT, "site": "khác"}), actor="test",
                             idempotency_key=replay_key, activation=CONSENTED)
    assert again.replayed and again.offline_seal == once.offline_seal


# -- the format ----------------------------------------------------------------------------------------
def test_payload_layout_and_cleaning() -> None:
    facts = SealFacts("ABCDEFGHJKLM", "marital-status-certificate", "00004", dt.date(2026, 1, 2),
                      (("holder", unicodedata.normalize("NFD", "Lê Thị\u001fCúc\n")), ("reg_no", "12=3")))
    payload = offline_seal.encode(facts, "AbCd-_12")
    assert payload == "\x1f".join(["KS1", "AbCd-_12", "ABCDEFGHJKLM", "marital-status-certificate", "00004",
                                   "20260102", "holder=Lê ThịCúc", "reg_no=12=3"]).encode()
    assert unicodedata.is_normalized("NFC", payload.decode())
    token = offline_seal.b64url(payload) + "." + offline_seal.b64url(bytes(64))
    parsed = offline_seal.parse(token)
    assert parsed.kid == "AbCd-_12" and parsed.facts.field("reg_no") == "12=3" and parsed.signature == bytes(64)
    assert "=" not in token and "+" not in token and "/" not in token
    # the date is the Vietnam calendar day: 17:30 UTC on 1 January is already 2 January in Hà Nội
    late = SealFacts.of("ABCDEFGHJKLM", "dossier-result", "00004", dt.datetime(2026, 1, 1, 17, 30, tzinfo=dt.UTC))
    assert late.date == dt.date(2026, 1, 2)


@pytest.mark.parametrize("token,reason", [
    ("", "malformed"),
    ("abc", "malformed"),
    ("a.b.c", "malformed"),
    ("S1MxH0FBQUFBQUFB.AAAA", "malformed"),  # a 3-byte signature
    ("!!!!." + "A" * 86, "malformed"),
    (offline_seal.b64url(b"KS2\x1fAAAAAAAA\x1fX\x1fY\x1f00004\x1f20260102") + "." + "A" * 86, "unsupported_version"),
    (offline_seal.b64url(b"KS1\x1fAAAAAAAA\x1fX\x1fY\x1f00004\x1f2026-1-2") + "." + "A" * 86, "malformed"),
    (offline_seal.b64url(b"KS1\x1fAAAAAAAA\x1fX\x1fY\x1f00004\x1f20260102\x1fnovalue") + "." + "A" * 86, "malformed"),
    (offline_seal.b64url(b"KS1\x1f\xff") + "." + "A" * 86, "malformed"),
])
def test_malformed_tokens_are_named(token: str, reason: str) -> None:
    check = offline_seal.verify(token, "X", [])
    assert (check.ok, check.reason) == (False, reason)


def test_qr_is_level_m_with_modules_of_at_least_0_4_mm() -> None:
    """A realistic permit (long public URL, three fields) stays at level M with modules ≥ 0.4 mm."""
    fields = (("permit_no", "125/GPXD-UBND"), ("owner", OWNER), ("site", "Số 12 phố Kim Mã, phường Ba Đình, Hà Nội"))
    payload = offline_seal.encode(SealFacts("ABCDEFGHJKLM", "construction-permit", "00004", dt.date(2026, 1, 2),
                                            fields), "AbCd-_12")
    url = "https://kyso.phuongbadinh.hanoi.gov.vn/v/ABCDEFGHJKLM#" + offline_seal.b64url(payload) + "." + "A" * 86
    assert len(url) > 350  # a KS1 seal already on paper
    code = _qr_code(url)
    assert code.error_correction == "M"
    assert 32.0 / (17 + 4 * code.version) >= 0.4 and pytest.approx(32 * 72 / 25.4) == QR_SIZE
    longest = url + "x" * 150  # several 80-character Vietnamese values: level L keeps the modules readable
    assert 32.0 / (17 + 4 * _qr_code(longest).version) >= 0.4


def test_seal_overlap_knows_old_and_new_stamps() -> None:
    assert _qr_column(PERSON_SIZE[0]) == QR_COLUMN + QR_GAP, "the QR code on its white quiet zone"
    assert _qr_column(LEGACY_OFFLINE_WIDTH) == QR_SIZE + QR_GAP, "documents stamped before the quiet zone"
    assert _qr_column(230.0) == LEGACY_QR_SIZE + QR_GAP, "documents stamped before the offline seal"
    assert _qr_column(PERSON_SIZE[0] - QR_COLUMN - QR_GAP) == 0


# -- the seal certificate ------------------------------------------------------------------------------
def test_seal_certificate_profile(pki: Container) -> None:
    with transaction(pki.sessions) as session:
        row = store.current_qr_seal(session)
    cert = x509.load_der_x509_certificate(row.der)
    assert row.key_ref and row.ca.name == "test-issuing" and row.profile == "qr-seal"
    assert cert.subject.rfc4514_string() == "CN=QR seal kyso Test Issuing CA,O=kyso thử nghiệm,C=VN"
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.content_commitment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]  # RFC 9336 documentSigning


def test_ca_init_adds_a_seal_to_an_existing_deployment_and_revocation_counts(pki: Container, specialist: str,
                                                                            sample_pdf: bytes) -> None:
    first = seal_rows(pki)[0]
    assert ensure_qr_seal(pki.pki, "test").serial == first.serial, "idempotent"
    signed = pki.signing.sign(permit(sample_pdf, specialist, PERMIT), actor="test", activation=CONSENTED)
    revocation.revoke(pki.pki, first.serial, Reason.keyCompromise, "test")  # "an old deployment" / a lost key
    again = init_hierarchy(pki.pki, root=ROOT, issuing=ISSUING, actor="test")
    assert again.created == [] and again.qr_seal_serial and again.qr_seal_serial != first.serial
    keys = offline_seal.public_keys(pki.pki)
    assert [k["status"] for k in keys] == ["revoked", "valid"]
    assert offline_seal.verify(signed.offline_seal or "", signed.document_id, keys).reason == "key_revoked"
    pki.signing.seal_material.clear()
    later = pki.signing.sign(permit(sample_pdf, specialist, {**PERMIT, "site": "mới"}), actor="test", activation=CONSENTED)
    check = offline_seal.verify(later.offline_seal or "", later.document_id, keys)
    assert check.ok and check.kid == keys[1]["kid"]


def test_missing_seal_certificate_refuses_qr_documents_with_503(pki: Container, specialist: str,
                                                              sample_pdf: bytes) -> None:
    from core.errors import Unavailable

    revocation.revoke(pki.pki, seal_rows(pki)[0].serial, Reason.cessationOfOperation, "test")
    pki.signing.seal_material.clear()
    with pytest.raises(Unavailable, match="kyso ca init") as info:
        pki.signing.sign(permit(sample_pdf, specialist, PERMIT), actor="test", activation=CONSENTED)
    assert info.value.code == "qr_seal_not_ready"
    assert documents(pki) == 0


def test_seal_certificate_is_renewed_30_days_before_expiry_and_old_seals_still_verify(
        pki: Container, specialist: str, sample_pdf: bytes) -> None:
    old = seal_rows(pki)[0]
    before = pki.signing.sign(permit(sample_pdf, specialist, PERMIT), actor="test", activation=CONSENTED)
    assert "qr_seal" not in republish_once(pki)
    later = old.not_after - dt.timedelta(days=20)
    clock.set_clock(lambda: later)
    try:
        assert republish_once(pki)["qr_seal"] == 1
        assert "qr_seal" not in republish_once(pki)
        rows = seal_rows(pki)
        assert [r.status for r in rows] == ["valid", "valid"], "renewal never revokes: printed seals stay valid"
        assert rows[1].replaces_serial == old.serial and rows[1].key_ref != old.key_ref
        pki.signing.seal_material.clear()
        newcomer = issue_credential(pki, name="Trần Văn Bình", id_number="001190000009")  # the first one expired
        after = pki.signing.sign(permit(sample_pdf, newcomer, {**PERMIT, "site": "sau"}), actor="test", activation=CONSENTED)
        keys = offline_seal.public_keys(pki.pki)
        first, second = (offline_seal.verify(r.offline_seal or "", r.document_id, keys) for r in (before, after))
        assert first.ok and second.ok and first.kid != second.kid
        assert [k["kid"] for k in keys] == [first.kid, second.kid]
    finally:
        clock.set_clock(None)
    with transaction(pki.sessions) as session:
        renewals = session.execute(select(func.count()).select_from(AuditEntry)
                                   .where(AuditEntry.action == "pki:qr-seal:renew")).scalar_one()
    assert renewals == 1


def test_public_keys_is_json_and_marks_expired_keys(pki: Container) -> None:
    [key] = offline_seal.public_keys(pki.pki)
    assert set(key) == {"kid", "alg", "jwk", "subject", "not_before", "not_after", "status"}
    assert set(key["jwk"]) == {"kty", "crv", "x", "y"} and len(key["jwk"]["x"]) == len(key["jwk"]["y"]) == 43
    json.dumps(key)
    row = seal_rows(pki)[0]
    clock.set_clock(lambda: row.not_after + dt.timedelta(days=1))
    try:
        [expired] = offline_seal.public_keys(pki.pki)
    finally:
        clock.set_clock(None)
    assert expired["status"] == "expired" and expired["kid"] == key["kid"]


# -- the policy ----------------------------------------------------------------------------------------
def _policy_with(tmp_path: Path, name: str, spec: dict) -> Path:
    from policies.documents import DOCUMENTS_FILE

    data = yaml.safe_load(DOCUMENTS_FILE.read_text("utf-8"))
    data["document_types"][name].update(spec)
    path = tmp_path / "document-types.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path


@pytest.mark.parametrize("name,spec,words", [
    ("civil-status-extract-birth", {"seal_fields": [{"name": "holder", "label_vi": "A", "label_en": "A"}]}, "qr: false"),
    ("dossier-result", {"seal_fields": [{"name": "Holder", "label_vi": "A", "label_en": "A"}]}, "name"),
    ("dossier-result", {"seal_fields": [{"name": "a", "label_vi": "A", "label_en": "A"}] * 2}, "named twice"),
    ("dossier-result", {"seal_fields": [{"name": "a", "label_vi": "A", "label_en": "A", "hidden": True}]}, "hidden"),
])
def test_bad_seal_fields_in_the_policy_are_refused(tmp_path: Path, name: str, spec: dict, words: str) -> None:
    with pytest.raises(PolicyInvalid, match=words):
        load_policy(_policy_with(tmp_path, name, spec))


def test_shipped_policy_seal_fields() -> None:
    policy = load_policy()
    permit_type = policy.get("construction-permit")
    assert [(f.name, f.required, f.mask) for f in permit_type.seal_fields] == [
        ("permit_no", True, False), ("owner", True, True), ("site", False, False)]
    assert [f.name for f in policy.get("marital-status-certificate").seal_fields] == ["holder", "reg_no"]
    for doc_type in policy.types.values():
        assert doc_type.qr or not doc_type.seal_fields
        for spec in doc_type.seal_fields:
            assert spec.label_vi and spec.label_en


# -- the doors: REST and CLI -----------------------------------------------------------------------------
def test_rest_api_takes_seal_fields(client, pki: Container, specialist: str,  # type: ignore[no-untyped-def]
                                    client_headers: dict[str, str], sample_pdf: bytes, phone) -> None:
    def post(fields: dict[str, str]):  # type: ignore[no-untyped-def]
        metadata = {"document_type": "construction-permit", "commune_code": COMMUNE, "credential_id": specialist,
                    "level": "B-B", "seal_fields": fields, "sad": phone.authorize(client, client_headers, sample_pdf)}
        return client.post("/api/v1/sign", files={"file": ("in.pdf", sample_pdf, "application/pdf")},
                           data={"metadata": json.dumps(metadata)},
                           headers={**client_headers, "Accept": "application/json"})

    ok = post(PERMIT)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    check = offline_seal.verify(body["offline_seal"], body["document_id"], offline_seal.public_keys(pki.pki))
    assert check.ok and check.facts and check.facts.field("owner") == OWNER
    record = client.get(f"/api/v1/documents/{body['document_id']}", headers=client_headers).json()
    assert record["offline_seal"] == body["offline_seal"]
    refused = post({"permit_no": "1/GPXD", "colour": "red"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "seal_fields_invalid", refused.text
    types = {t["name"]: t for t in client.get("/api/v1/document-types", headers=client_headers).json()}
    assert types["construction-permit"]["seal_fields"][1] == {
        "name": "owner", "label_vi": "Chủ đầu tư", "label_en": "Owner", "required": True, "mask": True}


def test_cli_field_option() -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from api.cli.sign import _seal_fields
    from core.errors import InvalidInput

    assert _seal_fields(["permit_no=12/GPXD", "owner=Lê Thị Cúc", "site=a=b"]) == {
        "permit_no": "12/GPXD", "owner": "Lê Thị Cúc", "site": "a=b"}
    for bad in (["owner"], ["=x"], ["owner=a", "owner=b"]):
        with pytest.raises(InvalidInput):
            _seal_fields(bad)
    usage = CliRunner().invoke(app, ["sign", "--help"], env={"COLUMNS": "200"}).output
    assert "--field" in usage and "--signature-field" in usage


# -- KS2: the compact form (issue 19) ----------------------------------------------------------------
TYPICAL = {  # realistic values of every document type with a QR code, behind a 54-character public address
    "marital-status-certificate": ((("holder", OWNER), ("reg_no", "123/2026")), 9),  # KS1: 13
    "certified-copy": ((("cert_no", "SCT/2026/000123"), ("original", "Bằng tốt nghiệp THPT")), 10),  # KS1: 13
    "dossier-result": ((("dossier_no", "000.00.04.H26-261206-0001"), ("applicant", OWNER)), 10),  # KS1: 13
    "land-procedure-result": ((("doc_no", "1234/QĐ-UBND"), ("holder", OWNER),
                               ("parcel", "Thửa 123, tờ bản đồ số 45")), 10),  # KS1: 14
    # three fields, one a 40-letter address: not yet ≤ 10 behind so long an address (KS1: 15)
    "construction-permit": ((("permit_no", "125/GPXD-UBND"), ("owner", OWNER),
                             ("site", "Số 12 phố Kim Mã, phường Ba Đình, Hà Nội")), 11),
}


def test_ks2_layout_and_round_trip() -> None:
    facts = SealFacts("ABCDEFGHJKLM", "marital-status-certificate", "00004", dt.date(2026, 1, 2),
                      (("holder", unicodedata.normalize("NFD", "Lê Thị\u001fCúc\n")), ("reg_no", "12=3 – ₫"),
                       ("zz", "ẫ" * 80)))
    payload = offline_seal.encode2(facts, "AbCd-_12")
    number = 0
    for ch in "ABCDEFGHJKLM":
        number = number * 32 + offline_seal.ID_ALPHABET.index(ch)
    head = (b"\x02" + offline_seal.b64url_decode("AbCd-_12") + number.to_bytes(8, "big")
            + (dt.date(2026, 1, 2) - dt.date(2000, 1, 1)).days.to_bytes(2, "big") + b"\x80\x7f\x04")
    # Vietnamese packed a byte a letter (2 × 9 + 1); a value with a character outside TEXT in UTF-8 (2 × 12)
    packed = bytes(offline_seal.TEXT.index(ch) for ch in "Lê ThịCúc")
    assert payload == (head + b"\x85\x13" + packed + b"\x86\x18" + "12=3 – ₫".encode()
                       + b"\x02zz" + b"\xa1\x01" + bytes([offline_seal.TEXT.index("ẫ")]) * 80)  # 161: two bytes
    token = offline_seal.token2(payload, bytes(range(64)))
    assert token.startswith("KS2:") and set(token[4:]) <= set(offline_seal.BASE42)
    assert not set(token) & set(" %+#?&")  # the QR alphanumeric characters a URL would alter
    parsed = offline_seal.parse(f"https://x.vn/v/ABCDEFGHJKLM#{token}")
    assert parsed.kid == "AbCd-_12" and parsed.payload == payload and parsed.signature == bytes(range(64))
    assert parsed.facts == dataclasses.replace(facts, fields=(("holder", "Lê ThịCúc"), ("reg_no", "12=3 – ₫"),
                                                              ("zz", "ẫ" * 80)))
    assert len(offline_seal.TEXT) == 229 and len(set(offline_seal.TEXT)) == 229
    assert all(unicodedata.is_normalized("NFC", ch) for ch in offline_seal.TEXT)
    other = dataclasses.replace(facts, commune_code="26734", fields=())
    assert offline_seal.parse(offline_seal.token2(offline_seal.encode2(other, "AbCd-_12"), bytes(64))).facts == other


def test_base42_is_rfc9285_over_42_characters() -> None:
    # RFC 9285's example "AB" (65·256 + 66 = 16706), in base 42: 16706 = 32 + 19·42 + 9·42² → W J 9
    assert offline_seal.base42(b"AB") == "WJ9"
    assert offline_seal.base42(b"") == "" and offline_seal.base42(b"\xff") == "36"  # 255 = 3 + 6·42
    for n in range(70):
        data = bytes((i * 37 + n) % 256 for i in range(n))
        assert offline_seal.base42_decode(offline_seal.base42(data)) == data
    for bad in ("A", "::::", "%00", "abc"):
        with pytest.raises(ValueError):
            offline_seal.base42_decode(bad)


@pytest.mark.parametrize("token", [
    "KS2:",
    "KS2:" + offline_seal.base42(b"\x02" + bytes(30) + bytes(64))[:-1],
    "KS2:" + offline_seal.base42(b"\x02" + bytes(16) + b"\x80\x80\xff" + bytes(64)),  # an unknown code
    "KS2:" + offline_seal.base42(b"\x02" + bytes(16) + b"\x80\x80\x85\x0aab" + bytes(64)),  # a value cut short
    "KS2:" + offline_seal.base42(b"\x02" + bytes(16) + b"\x80\x80\x85\x03\xe5" + bytes(64)),  # packed, beyond TEXT
    "KS2:" + offline_seal.base42(b"\x02" + bytes(16) + b"\x80\x7f\xa0\x8d\x06" + bytes(64)),  # 100000: 6 digits
    "KS2:" + offline_seal.base42(b"\x02" + b"\xff" * 16 + b"\x80\x80" + bytes(64)),  # an id beyond 60 bits
    "KS2:" + offline_seal.base42(b"\x02" + bytes(16) + b"\x80\x80\x85\x04\xc3\x28" + bytes(64)),  # not UTF-8
])
def test_malformed_ks2_tokens_are_named(token: str) -> None:
    check = offline_seal.verify(token, "X", [])
    assert (check.ok, check.reason) == (False, "malformed")


def test_unknown_ks2_format_byte() -> None:
    token = "KS2:" + offline_seal.base42(b"\x03" + bytes(20) + bytes(64))
    assert offline_seal.verify(token, "X", []).reason == "unsupported_version"


def test_the_citizen_page_knows_the_same_codes() -> None:
    """seal.js decodes KS2 in the browser: its tables must be the module's (append-only) ones."""
    script = (Path(__file__).resolve().parents[3] / "api" / "static" / "citizen" / "seal.js").read_text()
    codes = re.search(r"var CODES = \[(.*?)\];", script, re.S)
    assert codes and re.findall(r"'([^']*)'", codes.group(1)) == list(offline_seal.CODES)
    assert f"var B42 = '{offline_seal.BASE42}';" in script
    assert f"var ID_ALPHABET = '{offline_seal.ID_ALPHABET}';" in script
    assert "for (var c = 32; c < 127; c++)" in script and offline_seal.TEXT[:95] == "".join(map(chr, range(32, 127)))
    assert f"TEXT += '{offline_seal.TEXT[95:162]}' +\n    '{offline_seal.TEXT[162:]}';" in script
    from signing.create.service import ID_ALPHABET
    assert ID_ALPHABET == offline_seal.ID_ALPHABET
    shipped = load_policy()
    for doc_type in shipped.types.values():
        if doc_type.qr:
            assert doc_type.name in offline_seal.CODES
            assert all(spec.name in offline_seal.CODES for spec in doc_type.seal_fields)


@pytest.mark.parametrize("name", sorted(TYPICAL))
def test_typical_seals_print_small_qr_codes(name: str) -> None:
    fields, version = TYPICAL[name]
    facts = SealFacts("ABCDEFGHJKLM", name, "00004", dt.date(2026, 1, 2), fields)
    signature = hashlib.sha512(name.encode()).digest()  # as random as a real one (zeros would pack tighter)
    token = offline_seal.token2(offline_seal.encode2(facts, "AbCd-_12"), signature)
    code = _qr_code(f"https://kyso.phuongbadinh.hanoi.gov.vn/v/ABCDEFGHJKLM#{token}")
    assert (code.error_correction, code.version) == ("M", version)
    # the token rides in alphanumeric mode: the same text as one byte segment needs a larger code
    import qrcode
    from qrcode.util import MODE_8BIT_BYTE, QRData
    as_bytes = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    as_bytes.add_data(QRData(f"https://kyso.phuongbadinh.hanoi.gov.vn/v/ABCDEFGHJKLM#{token}".encode(), MODE_8BIT_BYTE))
    as_bytes.make(fit=True)
    assert as_bytes.version > version
    old = offline_seal.b64url(offline_seal.encode(facts, "AbCd-_12")) + "." + offline_seal.b64url(signature)
    assert _qr_code(f"https://kyso.phuongbadinh.hanoi.gov.vn/v/ABCDEFGHJKLM#{old}").version >= version + 3


def test_seals_already_printed_in_ks1_still_verify(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """A KS1 seal signed by the same key (what earlier kyso printed) verifies beside the new KS2 one."""
    result = pki.signing.sign(permit(sample_pdf, specialist, PERMIT), actor="test", activation=CONSENTED)
    token = result.offline_seal or ""
    assert token.startswith("KS2:")
    parsed = offline_seal.parse(token)
    material = offline_seal.SealMaterialCache(pki.pki).get()
    payload = offline_seal.encode(parsed.facts, parsed.kid)
    der = pki.pki.keystores.for_ref(material.key_ref).sign_digest(
        material.key_ref, hashlib.sha256(payload).digest(), hashes.SHA256(), SignatureScheme.ECDSA)
    r, s = decode_dss_signature(der)
    old = offline_seal.b64url(payload) + "." + offline_seal.b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    keys = offline_seal.public_keys(pki.pki)
    for seal in (token, old):
        check = offline_seal.verify(seal, result.document_id, keys)
        assert (check.ok, check.facts) == (True, parsed.facts), check
    assert offline_seal.verify(forged(old, document_type="dossier-result"), result.document_id, keys).reason \
        == "bad_signature"
    assert offline_seal.verify(forged(token, fields=(("owner", "x"),)), result.document_id, keys).reason \
        == "bad_signature"


# -- the log index (issue 20): only what is proven when the seal is signed -------------------------------------
def test_seal_carries_the_log_index_only_once_it_is_proven(pki: Container, specialist: str,
                                                           sample_pdf: bytes) -> None:
    """A first signature's seal is signed before its log entry exists: no index. A later version's seal
    (another signature printing a new QR code) carries the registration's index, but only when kyso has
    verified the inclusion proof then; not yet sequenced, or storage lying, means no index."""
    from pki.transparency import service as log_service
    from pki.transparency.models import LogTile
    from pki.transparency.proof import check_document_proof

    first = pki.signing.sign(permit(sample_pdf, specialist, PERMIT), actor="test", activation=CONSENTED)
    assert first.offline_seal and offline_seal.parse(first.offline_seal).facts.field(offline_seal.LOG_FIELD) is None
    unsequenced = pki.signing.sign(permit(first.pdf, issue_credential(pki), PERMIT), actor="test",
                                   activation=CONSENTED)
    assert unsequenced.version == 2 and unsequenced.offline_seal
    assert offline_seal.parse(unsequenced.offline_seal).facts.field(offline_seal.LOG_FIELD) is None

    log_service.sequence_all(pki.pki)
    later = pki.signing.sign(permit(unsequenced.pdf, issue_credential(pki), PERMIT), actor="test",
                             activation=CONSENTED)
    assert later.version == 3 and later.offline_seal
    keys = offline_seal.public_keys(pki.pki)
    check = offline_seal.verify(later.offline_seal, later.document_id, keys)
    assert check.ok and check.facts is not None
    index = check.facts.field(offline_seal.LOG_FIELD)
    with transaction(pki.sessions, read_only=True) as session:
        proof = log_service.proof_for_document(session, later.document_id, 2)
    assert index == str(proof.index)  # the newest registration proven when the seal was made: version 2's
    check_document_proof(proof, log_service.verifier(pki.pki), document_id=later.document_id, version=2)
    claimed = forged(later.offline_seal, fields=(*check.facts.fields[:-1], (offline_seal.LOG_FIELD, "0")))
    assert offline_seal.verify(claimed, later.document_id, keys).reason == "bad_signature"

    log_service.sequence_all(pki.pki)
    with transaction(pki.sessions) as session:  # storage lies: no hash tile matches the entries any more
        for tile in session.execute(select(LogTile)).scalars():
            tile.data = bytes(len(tile.data))
    lying = pki.signing.sign(permit(later.pdf, issue_credential(pki), PERMIT), actor="test", activation=CONSENTED)
    assert lying.offline_seal
    assert offline_seal.parse(lying.offline_seal).facts.field(offline_seal.LOG_FIELD) is None
