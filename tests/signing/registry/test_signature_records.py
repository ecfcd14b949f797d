"""Signature records: every signature value kyso produces is recorded with the registry row, on every
signing path, and found again from a file's signatures whatever bytes around them change; migration
0011 backfills them for documents signed before it."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from io import BytesIO

from alembic import command
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import delete, func, select

from api.container import Container
from api.routes import sign_requests
from core import clock
from core.db import alembic_config, transaction
from hsm import KeyType
from signing.activation.models import SignHashSignature
from signing.create import upgrade
from signing.create.service import AppearanceOptions, SigningService, SignRequest
from signing.registry import lifecycle
from signing.registry.models import DocumentFile, SignatureRecord
from signing.registry.records import SignatureValue, find_by_signatures, newest_record, record, signature_digest
from signing.verify.pdf_facts import signature_values
from tests.helpers.activation import PIN
from tests.helpers.pdfs import ForeignCA, serial_of
from tests.helpers.signing import COMMUNE, CONSENTED, SpecialistPhone, issue_credential

ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_SHA256 = "1.2.840.113549.1.1.11"
META = {"document_type": "dossier-result", "commune_code": COMMUNE, "level": "B-B", "appearance": {"visible": False}}


def request(pdf: bytes, credential: str, level: str = "B-B") -> SignRequest:
    return SignRequest(pdf=pdf, document_type="dossier-result", commune_code=COMMUNE, credential_id=credential,
                       level=level, appearance=AppearanceOptions(visible=False))  # type: ignore[arg-type]


def variants(pdf: bytes, n: int) -> list[bytes]:
    return [pdf + f"\n% dossier {i}\n".encode() for i in range(n)]


def values_of(pdf: bytes) -> list[bytes]:
    return [v.value for v in signature_values(pdf)]


def lookup(pki: Container, pdf: bytes) -> list[tuple]:
    """(source, document, version) of each signature in the file, in signing order; None if unrecorded."""
    with transaction(pki.sessions) as session:
        found = find_by_signatures(session, values_of(pdf))
    return [(r.source, r.document_id, r.version) if (r := found.get(v)) else None for v in values_of(pdf)]


def record_count(pki: Container) -> int:
    with transaction(pki.sessions) as session:
        return session.execute(select(func.count()).select_from(SignatureRecord)).scalar_one()


def test_signatures_and_archive_timestamps_are_recorded_not_the_inputs(pki: Container, specialist: str, seal: str,
                                                                       sample_pdf: bytes) -> None:
    foreign = ForeignCA.create(clock.now()).sign(sample_pdf, pss=False)
    person = pki.signing.sign(request(foreign, specialist, "B-LTA"), actor="test", activation=CONSENTED)
    sealed = pki.signing.sign(request(person.pdf, seal), actor="test", activation=CONSENTED)
    doc = person.document_id
    assert lookup(pki, sealed.pdf) == [None, ("sign", doc, 1), ("timestamp", doc, 1), ("sign", doc, 2)]
    with transaction(pki.sessions) as session:
        rows = {r.source + str(r.version): r for r in session.execute(select(SignatureRecord)).scalars()}
    assert (rows["sign1"].credential_id, rows["sign1"].signer_serial) == (specialist, person.signer_serial)
    assert (rows["sign2"].credential_id, rows["sign2"].signer_serial) == (seal, sealed.signer_serial)
    assert rows["timestamp1"].credential_id is None and rows["timestamp1"].signer_serial  # the TSA's certificate


def test_batch_sign_doc_and_approved_requests_are_recorded(client: TestClient, pki: Container, specialist: str,
                                                           client_headers: dict[str, str], sample_pdf: bytes,
                                                           phone: SpecialistPhone) -> None:
    batch_pdfs, doc_pdfs, request_pdfs = (variants(sample_pdf + f"% {path}\n".encode(), 2)
                                          for path in ("batch", "signDoc", "request"))
    files = [("files", (f"{i}.pdf", pdf, "application/pdf")) for i, pdf in enumerate(batch_pdfs)]
    sad = phone.authorize(client, client_headers, *batch_pdfs)
    r = client.post("/api/v1/sign/batch", files=files, headers=client_headers,
                    data={"metadata": json.dumps({"defaults": {**META, "credential_id": specialist, "sad": sad}})})
    assert r.status_code == 200, r.text
    signed = [client.get(f"/api/v1/documents/{item['result']['document_id']}/file", headers=client_headers).content
              for item in r.json()["items"]]

    sad = phone.authorize(client, client_headers, *doc_pdfs)
    r = client.post("/csc/v2/signatures/signDoc", headers=client_headers, json={
        "credentialID": specialist, "SAD": sad, "kyso": {k: v for k, v in META.items() if k != "level"},
        "documents": [{"document": base64.b64encode(p).decode(), "signature_format": "P",
                       "conformance_level": "AdES-B-B"} for p in doc_pdfs]})
    assert r.status_code == 200, r.text
    signed += [base64.b64decode(d) for d in r.json()["DocumentWithSignature"]]

    files = [("files", (f"{i}.pdf", pdf, "application/pdf")) for i, pdf in enumerate(request_pdfs)]
    r = client.post("/api/v1/sign/requests", files=files, headers=client_headers,
                    data={"metadata": json.dumps({"defaults": {**META, "credential_id": specialist}})})
    assert r.status_code == 202, r.text
    with phone.fresh_code() as code:
        out = sign_requests.approve(pki, r.json()["id"], specialist, PIN, code)
    assert out.status == "signed"
    signed += [client.get(f"/api/v1/documents/{item.document_id}/file", headers=client_headers).content
               for item in out.items]

    found = [lookup(pki, pdf) for pdf in signed]
    assert all(len(f) == 1 and f[0] is not None and f[0][0] == "sign" and f[0][2] == 1 for f in found), found
    assert len({f[0][1] for f in found}) == 6 == record_count(pki)


def test_sign_hash_values_are_recorded_once(client: TestClient, pki: Container, client_headers: dict[str, str]
                                            ) -> None:
    """RSA PKCS#1 v1.5 is deterministic: the same hash signed twice gives one value, recorded once."""
    credential = issue_credential(pki, key_type=KeyType.RSA_2048, name="Lê Văn Cường", id_number="001190000003")
    phone = SpecialistPhone(pki, credential)
    message = b"a hash computed by the client's own PDF software"
    answers = []
    for _ in range(2):
        sad = phone.authorize(client, client_headers, message, purpose="hash")
        r = client.post("/csc/v2/signatures/signHash", headers=client_headers, json={
            "credentialID": credential, "SAD": sad, "hashes": [base64.b64encode(hashlib.sha256(message).digest()).decode()],
            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": RSA_SHA256})
        assert r.status_code == 200, r.text
        answers.append(base64.b64decode(r.json()["signatures"][0]))
    assert answers[0] == answers[1]
    serial = serial_of(pki, credential)  # its own transaction: SQLite writers do not nest
    with transaction(pki.sessions) as session:
        [row] = session.execute(select(SignatureRecord)).scalars()
        assert (row.sha256, row.source, row.credential_id, row.document_id) == (
            signature_digest(answers[0]), "signhash", credential, None)
        assert row.signer_serial == serial
        record(session, [SignatureValue(answers[0], "signhash", None)], created_at=clock.now())  # again: kept once
        # while the activation room keeps every signHash call: two clients' requests, two rows, one value
        calls = session.execute(select(SignHashSignature)).scalars().all()
        assert [(c.signature_sha256, c.hash) for c in calls] == [(row.sha256, hashlib.sha256(message).hexdigest())] * 2
    assert record_count(pki) == 1


def test_upgrade_records_its_document_timestamp(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    down = pki.settings.model_copy(update={"tsa_url": "http://127.0.0.1:9/tsa", "tsa_timeout_seconds": 1})
    offline = SigningService(dataclasses.replace(pki.pki, settings=down))
    result = offline.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    assert result.pending_upgrade
    assert upgrade.upgrade_one(pki.signing, result.document_id) == "upgraded"
    with transaction(pki.sessions) as session:
        upgraded = lifecycle.file_bytes(session, pki.settings, lifecycle.get_file(session, result.document_id))
    assert lookup(pki, upgraded) == [("sign", result.document_id, 1), ("timestamp", result.document_id, 2)]


def test_a_withdrawn_document_is_found_after_its_padding_changes(pki: Container, specialist: str,
                                                                 sample_pdf: bytes) -> None:
    result = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED)
    lifecycle.withdraw(pki.pki, result.document_id, "issued in error", actor="test")
    [sig] = PdfFileReader(BytesIO(result.pdf)).embedded_signatures
    end = int(sig.byte_range[2]) - 2  # the last hex digit inside /Contents <...>: unsigned zero padding
    assert result.pdf[end:end + 2] == b"0>"
    tampered = result.pdf[:end] + b"7" + result.pdf[end + 1:]
    with transaction(pki.sessions) as session:
        assert lifecycle.find_by_hash(session, hashlib.sha256(tampered).hexdigest()) is None
        found = newest_record(session, values_of(tampered))
    assert found is not None and (found.document_id, found.version) == (result.document_id, 1)
    assert found.document_status == "withdrawn" and found.document_version == 1


def test_migration_backfills_documents_signed_before_it(pki: Container, specialist: str, seal: str,
                                                        sample_pdf: bytes) -> None:
    """A database made with the code before 0011 (here: today's, its records then dropped with the table)
    finds every kyso signature of every stored version after the upgrade, and no foreign one."""
    foreign = ForeignCA.create(clock.now()).sign(sample_pdf, pss=False)
    person = pki.signing.sign(request(foreign, specialist, "B-LTA"), actor="test", activation=CONSENTED)
    pki.signing.sign(request(person.pdf, seal), actor="test", activation=CONSENTED)
    other = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    with transaction(pki.sessions) as session:
        before = {(r.sha256, r.document_id, r.version, r.source, r.signer_serial, r.credential_id)
                  for r in session.execute(select(SignatureRecord)).scalars()}
        session.execute(delete(SignatureRecord))
    assert len(before) == 4  # two signatures and an archive timestamp on one document, one on the other
    pki.engine.dispose()
    url = pki.settings.resolved_database_url
    command.downgrade(alembic_config(url), "0010")
    command.upgrade(alembic_config(url), "head")
    with transaction(pki.sessions) as session:
        after = {(r.sha256, r.document_id, r.version, r.source, r.signer_serial, r.credential_id)
                 for r in session.execute(select(SignatureRecord)).scalars()}
        files = [(f.document_id, f.version, lifecycle.file_bytes(session, pki.settings, f))
                 for f in session.execute(select(DocumentFile)).scalars()]
    assert after == before
    for document_id, version, pdf in files:
        found = lookup(pki, pdf)
        kyso = found[1:] if document_id == person.document_id else found
        assert kyso and all(f is not None and f[1] == document_id and f[2] <= version for f in kyso), found
    assert lookup(pki, other.pdf) == [("sign", other.document_id, 1)]
