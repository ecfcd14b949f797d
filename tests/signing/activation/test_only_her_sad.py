"""Attacks on sole control: every path that could sign with a specialist's credential is tried without her
SAD, or with a SAD she authorized for the other door (documents vs CSC signHash). Each is refused, nothing
is signed, registered or recorded, the SAD stays unspent, and each refusal is audited exactly once.

The doors: REST /api/v1/sign and /api/v1/sign/batch, signing requests (approved only on her page), CSC
signatures/signDoc and signatures/signHash, the signing service in process, and ``kyso sign``."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.container import Container
from api.routes import sign_requests
from core import audit, clock
from core.db import transaction
from core.settings import Settings
from signing.activation import factors
from signing.activation.models import SignatureActivation, SignHashSignature
from signing.activation.sole_control import ActivationRequired, Required
from signing.registry.models import SignatureRecord
from tests.helpers.activation import PIN, enroll
from tests.helpers.api import meta, sign
from tests.helpers.clock import FrozenClock
from tests.helpers.signing import COMMUNE, CORPUS, SpecialistPhone, documents, issue_credential, request

SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
KYSO_DOC = {"document_type": "dossier-result", "commune_code": COMMUNE, "appearance": {"visible": False}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def denials(container: Container, credential: str) -> list[dict]:
    """The refusals audited about ``credential`` (every kind of deny), in order."""
    with transaction(container.sessions) as session:
        rows = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.subject == credential,
                                                              audit.AuditEntry.action.like("%:deny"))
                               .order_by(audit.AuditEntry.seq)).scalars().all()
        return [{"action": r.action, **json.loads(r.details)} for r in rows]


def signatures_made(container: Container) -> tuple[int, int]:
    """(registry signature records, signHash records): both stay 0 after a refusal."""
    with transaction(container.sessions) as session:
        return (session.execute(select(func.count()).select_from(SignatureRecord)).scalar_one(),
                session.execute(select(func.count()).select_from(SignHashSignature)).scalar_one())


def unspent(container: Container, sad: str) -> bool:
    with transaction(container.sessions) as session:
        row = session.get(SignatureActivation, hashlib.sha256(sad.encode()).hexdigest())
        return row is not None and row.used_at is None


def sign_hash(client: TestClient, headers: dict[str, str], credential: str, sad: str, digest: bytes):  # type: ignore[no-untyped-def]
    return client.post("/csc/v2/signatures/signHash", headers=headers, json={
        "credentialID": credential, "SAD": sad, "hashes": [b64(digest)], "hashAlgorithmOID": SHA256,
        "signAlgo": ECDSA_SHA256})


def sign_doc(client: TestClient, headers: dict[str, str], credential: str, sad: str | None, pdf: bytes):  # type: ignore[no-untyped-def]
    body: dict[str, object] = {"credentialID": credential, "kyso": KYSO_DOC, "documents": [
        {"document": b64(pdf), "signature_format": "P", "conformance_level": "AdES-B-B"}]}
    if sad is not None:
        body["SAD"] = sad
    return client.post("/csc/v2/signatures/signDoc", headers=headers, json=body)


def batch(client: TestClient, headers: dict[str, str], pdfs: list[bytes], defaults: dict):  # type: ignore[no-untyped-def]
    files = [("files", (f"{i}.pdf", pdf, "application/pdf")) for i, pdf in enumerate(pdfs)]
    return client.post("/api/v1/sign/batch", files=files, data={"metadata": json.dumps({"defaults": defaults})},
                       headers=headers)


# -- no way around it in the code ----------------------------------------------------------------------------
def test_the_service_has_no_default_consent_and_the_application_no_bypass() -> None:
    """``activation`` is a required argument, and the only ``Activation`` implementations in application code
    are ``Required`` and ``SADActivation`` (the test-only one lives in tests/helpers/signing.py)."""
    from signing.create.service import SigningService

    parameter = inspect.signature(SigningService.sign).parameters["activation"]
    assert parameter.default is inspect.Parameter.empty
    root = Path(__file__).resolve().parents[3]
    spenders = sorted(str(path.relative_to(root)) + ":" + line.split("(")[0].strip()
                      for folder in ("api", "signing", "pki", "policies", "hsm", "core")
                      for path in (root / folder).rglob("*.py")
                      for line in path.read_text().splitlines() if line.strip().startswith("def spend("))
    # the protocol itself, then Required and SADActivation
    assert spenders == ["signing/activation/sole_control.py:def spend"] * 2 + ["signing/create/consent.py:def spend"], \
        spenders


# -- no SAD at all ---------------------------------------------------------------------------------------
def test_no_door_signs_with_her_credential_without_her_sad(client: TestClient, pki: Container, specialist: str,
                                                            client_headers: dict[str, str], sample_pdf: bytes,
                                                            phone: SpecialistPhone) -> None:
    rest = sign(client, client_headers, sample_pdf, meta(specialist, level="B-B"))
    assert rest.status_code == 403 and rest.json()["error"]["code"] == "activation_required", rest.text
    many = batch(client, client_headers, [sample_pdf, sample_pdf + b"\n% 2\n"], meta(specialist, level="B-B"))
    assert many.status_code == 200 and many.json()["signed"] == 0, many.text
    assert {item["error"]["code"] for item in many.json()["items"]} == {"activation_required"}
    doc = sign_doc(client, client_headers, specialist, None, sample_pdf)
    assert doc.status_code == 403 and doc.json()["error"] == "activation_required", doc.text
    forged = sign_hash(client, client_headers, specialist, "kyso_sad_" + "A" * 43, hashlib.sha256(b"x").digest())
    assert forged.status_code == 403 and forged.json()["error"] == "invalid_sad", forged.text
    with pytest.raises(ActivationRequired, match="specialist's"):  # in process, as the CLI's seal path signs
        pki.signing.sign(request(sample_pdf, specialist), actor="cli:operator", activation=Required(pki.pki, "cli:x"))

    assert documents(pki) == 0 and signatures_made(pki) == (0, 0)
    refused = denials(pki, specialist)
    # one audit entry per refusal: /sign, two batch items, signDoc, the in-process call (activation_required),
    # and the forged SAD at signHash
    assert [d["answered"] for d in refused].count("activation_required") == 5, refused
    assert [(d["action"], d["answered"]) for d in refused if d["answered"] == "invalid_sad"] == [
        ("activation:sad:deny", "invalid_sad")]


# -- a SAD for the other door ----------------------------------------------------------------------------
def test_a_sad_for_documents_is_refused_by_sign_hash(client: TestClient, pki: Container, specialist: str,
                                                     client_headers: dict[str, str], sample_pdf: bytes,
                                                     phone: SpecialistPhone) -> None:
    """She approved a PDF; the client tries to get a raw signature over that PDF's hash instead, which kyso
    would never register as a document."""
    sad = phone.authorize(client, client_headers, sample_pdf)  # purpose: documents
    r = sign_hash(client, client_headers, specialist, sad, hashlib.sha256(sample_pdf).digest())
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "sad_wrong_purpose"
    assert "signHash" in r.json()["error_description"] and "documents" in r.json()["error_description"]
    assert signatures_made(pki) == (0, 0) and unspent(pki, sad)
    assert [(d["action"], d["answered"]) for d in denials(pki, specialist)] == [
        ("activation:sad:deny", "sad_wrong_purpose")]
    ok = sign(client, client_headers, sample_pdf, meta(specialist, level="B-B", sad=sad))  # its own door still opens
    assert ok.status_code == 200, ok.text
    assert documents(pki) == 1


@pytest.mark.parametrize("door", ["sign", "batch", "signDoc"])
def test_a_sad_for_sign_hash_is_refused_by_every_document_door(client: TestClient, pki: Container, specialist: str,
                                                               client_headers: dict[str, str], sample_pdf: bytes,
                                                               phone: SpecialistPhone, door: str) -> None:
    """CSC's default authorization (no kyso purpose) is for signHash: it signs no document, even over the
    document's own SHA-256."""
    sad = phone.authorize(client, client_headers, sample_pdf, purpose="hash")
    if door == "sign":
        r = sign(client, client_headers, sample_pdf, meta(specialist, level="B-B", sad=sad))
        assert r.status_code == 403, r.text
        code, message = r.json()["error"]["code"], r.json()["error"]["message"]
    elif door == "batch":
        r = batch(client, client_headers, [sample_pdf], meta(specialist, level="B-B", sad=sad))
        assert r.status_code == 200 and r.json()["signed"] == 0, r.text
        error = r.json()["items"][0]["error"]
        assert error["status"] == 403
        code, message = error["code"], error["message"]
    else:
        r = sign_doc(client, client_headers, specialist, sad, sample_pdf)
        assert r.status_code == 403, r.text
        code, message = r.json()["error"], r.json()["error_description"]
    assert code == "sad_wrong_purpose"
    assert '"purpose": "documents"' in message
    assert documents(pki) == 0 and signatures_made(pki) == (0, 0) and unspent(pki, sad)
    assert [(d["action"], d["answered"]) for d in denials(pki, specialist)] == [
        ("activation:sad:deny", "sad_wrong_purpose")]
    made = sign_hash(client, client_headers, specialist, sad, hashlib.sha256(sample_pdf).digest())
    assert made.status_code == 200, made.text  # at signHash, the door it was authorized for, it works
    assert signatures_made(pki) == (1, 1)


def test_the_purpose_is_kept_across_extend_transaction(client: TestClient, pki: Container, specialist: str,
                                                       client_headers: dict[str, str], sample_pdf: bytes,
                                                       phone: SpecialistPhone) -> None:
    sad = phone.authorize(client, client_headers, sample_pdf, purpose="hash")
    r = client.post("/csc/v2/credentials/extendTransaction", headers=client_headers,
                    json={"credentialID": specialist, "SAD": sad})
    assert r.status_code == 200, r.text
    fresh = r.json()["SAD"]
    refused = sign(client, client_headers, sample_pdf, meta(specialist, level="B-B", sad=fresh))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "sad_wrong_purpose"
    assert documents(pki) == 0


def test_an_unknown_purpose_is_refused_at_authorize(client: TestClient, pki: Container, specialist: str,
                                                    client_headers: dict[str, str], phone: SpecialistPhone) -> None:
    with phone.fresh_code() as code:
        r = client.post("/csc/v2/credentials/authorize", headers=client_headers, json={
            "credentialID": specialist, "numSignatures": 1, "hashes": [b64(hashlib.sha256(b"x").digest())],
            "authData": [{"id": "PIN", "value": PIN}, {"id": "OTP", "value": code}], "kyso": {"purpose": "anything"}})
    assert r.status_code == 400, r.text
    with transaction(pki.sessions) as session:
        assert session.execute(select(func.count()).select_from(SignatureActivation)).scalar_one() == 0


# -- signHash records --------------------------------------------------------------------------------------
def test_every_sign_hash_signature_is_recorded_and_audited_once(client: TestClient, pki: Container, specialist: str,
                                                                client_headers: dict[str, str],
                                                                phone: SpecialistPhone) -> None:
    digests = [hashlib.sha256(f"hash {i}".encode()).digest() for i in range(3)]
    sad = phone.authorize(client, client_headers, *[f"hash {i}".encode() for i in range(3)], purpose="hash")
    r = client.post("/csc/v2/signatures/signHash", headers=client_headers, json={
        "credentialID": specialist, "SAD": sad, "hashes": [b64(d) for d in digests], "hashAlgorithmOID": SHA256,
        "signAlgo": ECDSA_SHA256})
    assert r.status_code == 200, r.text
    values = [base64.b64decode(s) for s in r.json()["signatures"]]
    with transaction(pki.sessions) as session:
        rows = session.execute(select(SignHashSignature).order_by(SignHashSignature.id)).scalars().all()
        entries = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.action == "activation:signhash:sign")).scalars().all()
        registry = set(session.execute(select(SignatureRecord.sha256).where(
            SignatureRecord.source == "signhash")).scalars())
    client_actor = rows[0].client
    assert client_actor.startswith("token:")
    assert [(row.credential_id, row.hash_algo, row.hash, row.signature_sha256) for row in rows] == [
        (specialist, "sha256", d.hex(), hashlib.sha256(v).hexdigest()) for d, v in zip(digests, values, strict=True)]
    assert {row.sad_id for row in rows} == {hashlib.sha256(sad.encode()).hexdigest()}
    assert registry == {row.signature_sha256 for row in rows}  # the verifier's lookup finds each of them
    [entry] = entries
    details = json.loads(entry.details)
    assert (entry.actor, entry.subject, details["count"], details["signatures_sha256"]) == (
        client_actor, specialist, 3, [row.signature_sha256 for row in rows])


# -- signing requests --------------------------------------------------------------------------------------
def test_a_signing_request_is_signed_only_by_her_approval(client: TestClient, pki: Container, specialist: str,
                                                          client_headers: dict[str, str], sample_pdf: bytes,
                                                          phone: SpecialistPhone) -> None:
    files = [("files", ("a.pdf", sample_pdf, "application/pdf"))]
    submitted = client.post("/api/v1/sign/requests", files=files, headers=client_headers,
                            data={"metadata": json.dumps({"defaults": meta(specialist, level="B-B")})})
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["id"]
    assert documents(pki) == 0  # submitted is not signed
    with phone.fresh_code() as code, pytest.raises(factors.InvalidActivationData):
        sign_requests.approve(pki, request_id, specialist, "999999", code)  # someone who does not know her PIN
    assert documents(pki) == 0
    assert client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()["status"] == "pending"
    assert [d["answered"] for d in denials(pki, specialist)] == ["invalid_activation_data"]
    with phone.fresh_code() as code:
        done = sign_requests.approve(pki, request_id, specialist, PIN, code)
    assert done.status == "signed" and documents(pki) == 1
    with transaction(pki.sessions) as session:
        grants = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.subject == specialist, audit.AuditEntry.action == "activation:authorize:grant")
        ).scalars().all()
        assert [json.loads(g.details)["purpose"] for g in grants] == ["documents"]


# -- the sealed verification report ----------------------------------------------------------------------
def test_her_credential_never_seals_an_anonymous_verification_report(pki: Container, specialist: str,
                                                                     sample_pdf: bytes) -> None:
    """An operator who names her credential as KYSO_REPORT_SEAL_CREDENTIAL would let anyone on the internet
    have her key sign a report: refused, audited once, nothing signed."""
    settings = pki.settings.model_copy(update={"report_seal_credential": specialist})
    container = dataclasses.replace(pki, settings=settings)
    container.pki.settings = settings  # type: ignore[misc]
    with TestClient(create_app(container, scheduler=False)) as anonymous:
        r = anonymous.post("/api/v1/verify", files={"file": ("x.pdf", sample_pdf, "application/pdf")},
                           params={"format": "pdf"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "report_seal_not_a_seal" and "seal" in r.json()["error"]["message"]
    with transaction(pki.sessions) as session:
        refused = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.subject == specialist, audit.AuditEntry.action == "signing:report:deny")).scalars().all()
        sealed = session.execute(select(func.count()).select_from(audit.AuditEntry).where(
            audit.AuditEntry.action == "signing:report:seal")).scalar_one()
    assert len(refused) == 1 and sealed == 0


# -- the command line --------------------------------------------------------------------------------------
def _kyso(settings: Settings, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(),  # type: ignore[union-attr]
           "COLUMNS": "200", "USER": "operator-on-duty"}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, input=stdin, check=False,
                          capture_output=True, text=True, timeout=180)


def test_the_cli_signs_with_her_credential_only_with_her_pin_and_code(pki: Container, settings: Settings,
                                                                      tmp_path: Path) -> None:
    credential = issue_credential(pki)
    past = FrozenClock()  # enrolled two minutes ago, so the code of "now" has not been used
    past.advance(-120)
    clock.set_clock(lambda: past.now)
    try:
        her_phone = enroll(pki, credential, past)
    finally:
        clock.set_clock(None)
    her_phone.clock = None
    source = tmp_path / "ket-qua.pdf"
    source.write_bytes((CORPUS / "fourpages.pdf").read_bytes())
    args = ("sign", str(source), "-o", str(tmp_path / "out.pdf"), "-c", credential, "--commune", COMMUNE,
            "--level", "B-B", "--invisible")

    nobody = _kyso(settings, *args, stdin="")  # a script, cron, an operator alone: no answer
    assert nobody.returncode == 2, nobody.stderr
    assert "activation_required" in nobody.stderr and "PIN" in nobody.stderr and "nothing was signed" in nobody.stderr
    assert not (tmp_path / "out.pdf").exists() and documents(pki) == 0
    assert [(d["action"], d["reason"]) for d in denials(pki, credential)] == [
        ("activation:sad:deny", "no PIN and code at the command line")]

    wrong = _kyso(settings, *args, stdin="999999\n000000\n")  # a guess (a right code would be burnt)
    assert wrong.returncode == 2 and "invalid_activation_data" in wrong.stderr
    assert not (tmp_path / "out.pdf").exists() and documents(pki) == 0

    code = her_phone.code()
    signed = _kyso(settings, *args, stdin=f"{PIN}\n{code}\n")
    assert signed.returncode == 0, signed.stderr
    assert PIN not in signed.stdout + signed.stderr and code not in signed.stdout
    assert (tmp_path / "out.pdf").read_bytes().startswith(b"%PDF") and documents(pki) == 1
    with transaction(pki.sessions) as session:
        consumed = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.subject == credential, audit.AuditEntry.action == "activation:sad:consume")).scalars().all()
    [entry] = consumed
    assert json.loads(entry.details)["purpose"] == "documents"
    assert json.loads(entry.details)["hashes"] == [hashlib.sha256(hashlib.sha256(source.read_bytes()).digest())
                                                   .hexdigest()]


def test_the_cli_signs_with_a_seal_without_asking(pki: Container, settings: Settings, seal: str,
                                                  tmp_path: Path) -> None:
    source = tmp_path / "ban-sao.pdf"
    source.write_bytes((CORPUS / "fourpages.pdf").read_bytes())
    r = _kyso(settings, "sign", str(source), "-c", seal, "--commune", COMMUNE, "--type", "certified-copy",
              "--copy-form", "SAO Y", "--level", "B-B", "--json", stdin="")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["document_id"] and documents(pki) == 1
    assert "PIN" not in r.stderr
