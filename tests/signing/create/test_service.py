"""Signing through the service: levels, algorithms, sequential signatures, the registry, failures.

pyHanko's validator judges every output offline; the interop suite repeats the key cases with
pdfsig and qpdf.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from api.container import Container
from core import audit
from core.audit import AuditEntry
from core.db import transaction
from core.errors import Conflict, InvalidInput, NotFound
from hsm import KeyType
from pki import revocation, store
from pki.reasons import Reason
from policies.errors import UnknownDocumentType
from signing.create import upgrade
from signing.create.service import AppearanceOptions, SigningService
from signing.errors import EncryptedPdf, PdfTooLarge, SigningRefused, UnreadablePdf
from signing.registry import lifecycle
from signing.registry.models import SignedDocument
from tests.helpers.signing import COMMUNE, CONSENTED, CORPUS, documents, issue_credential, request, root_pem
from tests.helpers.validation import validate_all


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_each_level_validates_offline(pki: Container, specialist: str, sample_pdf: bytes, level: str) -> None:
    result = pki.signing.sign(request(sample_pdf, specialist, level), actor="test", activation=CONSENTED)
    assert result.level == level and not result.pending_upgrade
    assert result.pdf.startswith(sample_pdf), "signing appends an incremental update"
    [verdict] = validate_all(result.pdf, root_pem(pki), ltv=level in ("B-LT", "B-LTA"))
    assert verdict.intact and verdict.valid and verdict.trusted and verdict.bottom_line
    assert verdict.ess_v2, "ESS signing-certificate-v2 must be present (Acrobat, Foxit)"
    assert verdict.md_algorithm == "sha256"
    assert verdict.timestamp_valid is (None if level == "B-B" else True)
    reader = PdfFileReader(io.BytesIO(result.pdf))
    assert ("/DSS" in reader.root) == (level in ("B-LT", "B-LTA"))
    assert len(reader.embedded_timestamp_signatures) == (1 if level == "B-LTA" else 0)
    sig = reader.embedded_regular_signatures[0]
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"


def test_registry_record_and_audit(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    result = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="token:civil-reg", activation=CONSENTED)
    assert len(result.document_id) == 12 and result.document_id.isalnum()
    with transaction(pki.sessions) as session:
        doc = lifecycle.get_document(session, result.document_id)
        assert (doc.document_type, doc.commune_code, doc.dossier_number) == ("dossier-result", COMMUNE, "HS-2026-0001")
        assert doc.sha256 == hashlib.sha256(result.pdf).hexdigest() == result.sha256
        assert doc.status == "valid" and doc.level == "B-LT" and doc.policy_version == pki.signing.policy.version
        assert doc.signer_serial == store.get_credential(session, specialist).certificate.serial
        assert lifecycle.file_bytes(session, pki.settings, lifecycle.get_file(session, doc.id)) == result.pdf
        assert lifecycle.find_by_hash(session, result.sha256)[0].id == doc.id  # type: ignore[index]
    with transaction(pki.sessions) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == "signing:document:sign")).scalars().all()
        assert [(r.subject, r.actor) for r in rows] == [(result.document_id, "token:civil-reg")]
        assert audit.verify(session).ok


@pytest.mark.parametrize("key_type,padding,mechanism,digest", [
    (KeyType.RSA_2048, None, "rsassa_pss", "sha256"),
    (KeyType.RSA_2048, "pkcs1v15", "sha256_rsa", "sha256"),
    (KeyType.EC_P384, None, "sha384_ecdsa", "sha384"),
])
def test_algorithms(pki: Container, sample_pdf: bytes, key_type: KeyType, padding: str | None, mechanism: str,
                    digest: str) -> None:
    credential = issue_credential(pki, key_type=key_type, id_number="001190000002")
    result = pki.signing.sign(request(sample_pdf, credential, "B-T", rsa_padding=padding), actor="test", activation=CONSENTED)
    [verdict] = validate_all(result.pdf, root_pem(pki), ltv=False)
    assert verdict.bottom_line and verdict.signature_mechanism in (mechanism, "rsassa_pkcs1v15")
    if padding is None and key_type.is_rsa:
        assert verdict.signature_mechanism == "rsassa_pss", "RSA keys sign with PSS unless told otherwise"
    assert verdict.md_algorithm == digest


def test_person_then_seal_same_document(pki: Container, specialist: str, seal: str, sample_pdf: bytes) -> None:
    first = pki.signing.sign(request(sample_pdf, specialist, "B-LT", certify=True), actor="test", activation=CONSENTED)
    second = pki.signing.sign(request(first.pdf, seal, "B-LT"), actor="test", activation=CONSENTED)
    assert second.document_id == first.document_id and second.version == 2
    assert second.pdf.startswith(first.pdf), "a later signature never rewrites signed bytes"
    verdicts = validate_all(second.pdf, root_pem(pki), ltv=True)
    assert len(verdicts) == 2 and all(v.intact and v.valid and v.trusted for v in verdicts)
    assert all(v.docmdp_ok is not False for v in verdicts)
    reader = PdfFileReader(io.BytesIO(second.pdf))
    assert reader.embedded_regular_signatures[0].docmdp_level is not None, "the first signature certifies"
    with transaction(pki.sessions) as session:
        doc = lifecycle.get_document(session, first.document_id)
        assert (doc.version, doc.signatures, doc.sha256) == (2, 2, second.sha256)
        # the copy handed out after the first signature stays findable
        assert lifecycle.find_by_hash(session, first.sha256)[0].id == doc.id  # type: ignore[index]
    with pytest.raises(SigningRefused, match="older version"):
        pki.signing.sign(request(first.pdf, seal), actor="test", activation=CONSENTED)


def test_seal_needs_the_person_first(pki: Container, seal: str, sample_pdf: bytes) -> None:
    with pytest.raises(SigningRefused, match="Art. 32"):
        pki.signing.sign(request(sample_pdf, seal), actor="test", activation=CONSENTED)
    assert documents(pki) == 0


def test_revoked_or_unknown_signer_refused(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    with transaction(pki.sessions) as session:
        serial = store.get_credential(session, specialist).certificate.serial
    revocation.revoke(pki.pki, serial, Reason.affiliationChanged, "test")
    with pytest.raises(SigningRefused, match="revoked.*affiliationChanged.*no longer sign"):
        pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED)
    with pytest.raises(NotFound):
        pki.signing.sign(request(sample_pdf, "cred_" + "0" * 24), actor="test", activation=CONSENTED)
    assert documents(pki) == 0


def test_wrong_commune_and_unknown_type(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    with pytest.raises(SigningRefused, match="belongs to commune"):
        pki.signing.sign(dataclasses.replace(request(sample_pdf, specialist), commune_code="00008"), actor="test", activation=CONSENTED)
    with pytest.raises(UnknownDocumentType, match="known types"):
        pki.signing.sign(dataclasses.replace(request(sample_pdf, specialist), document_type="nope"), actor="test", activation=CONSENTED)
    with pytest.raises(InvalidInput):
        pki.signing.sign(dataclasses.replace(request(sample_pdf, specialist), commune_code="99999"), actor="test", activation=CONSENTED)
    assert documents(pki) == 0


@pytest.mark.parametrize("name,error", [("graph-encrypted.pdf", EncryptedPdf), (None, UnreadablePdf)])
def test_bad_inputs_are_clear_errors(pki: Container, specialist: str, name: str | None, error: type) -> None:
    data = (CORPUS / name).read_bytes() if name else b"%PDF-1.7\nthis is not really a PDF\n%%EOF"
    with pytest.raises(error):
        pki.signing.sign(request(data, specialist), actor="test", activation=CONSENTED)
    assert documents(pki) == 0


def test_size_limit(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    small = SigningService(dataclasses.replace(pki.pki, settings=pki.settings.model_copy(update={"max_pdf_bytes": 1024})))
    with pytest.raises(PdfTooLarge):
        small.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED)


def test_idempotency_key(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    first = pki.signing.sign(request(sample_pdf, specialist), actor="client-a", idempotency_key="k-1", activation=CONSENTED)
    again = pki.signing.sign(request(sample_pdf, specialist), actor="client-a", idempotency_key="k-1", activation=CONSENTED)
    assert again.replayed and again.document_id == first.document_id and again.pdf == first.pdf
    assert documents(pki) == 1
    with pytest.raises(Conflict, match="different request"):
        pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="client-a", idempotency_key="k-1", activation=CONSENTED)
    other = pki.signing.sign(request(sample_pdf, specialist), actor="client-b", idempotency_key="k-1", activation=CONSENTED)
    assert other.document_id != first.document_id, "keys are per client"


def test_tsa_down_signs_b_b_then_upgrades(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """A TSA that does not answer: B-B at once, pending in the registry, then B-LT in the background."""
    down = pki.settings.model_copy(update={"tsa_url": "http://127.0.0.1:9/tsa", "tsa_timeout_seconds": 1})
    offline = SigningService(dataclasses.replace(pki.pki, settings=down))
    result = offline.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    assert result.level == "B-B" and result.pending_upgrade
    assert upgrade.upgrade_due(offline) == {"upgraded": 0, "retry": 1, "failed": 0}
    with transaction(pki.sessions) as session:
        doc = lifecycle.get_document(session, result.document_id)
        assert doc.upgrade_status == "pending" and doc.upgrade_attempts == 1 and doc.last_error
        doc.next_attempt_at = doc.signed_at  # due again now
    assert upgrade.upgrade_due(pki.signing) == {"upgraded": 1, "retry": 0, "failed": 0}
    with transaction(pki.sessions) as session:
        doc = lifecycle.get_document(session, result.document_id)
        assert (doc.level, doc.upgrade_status, doc.version) == ("B-LT", "none", 2)
        upgraded = lifecycle.file_bytes(session, pki.settings, lifecycle.get_file(session, doc.id))
    assert upgraded.startswith(result.pdf)
    [verdict] = validate_all(upgraded, root_pem(pki), ltv=True)
    assert verdict.intact and verdict.valid and verdict.trusted
    reader = PdfFileReader(io.BytesIO(upgraded))
    assert len(reader.embedded_timestamp_signatures) == 1, "B-T reached through a document timestamp"


def test_upgrade_gives_up_after_max_attempts(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    down = pki.settings.model_copy(update={"tsa_url": "http://127.0.0.1:9/tsa", "tsa_timeout_seconds": 1,
                                           "upgrade_max_attempts": 2})
    offline = SigningService(dataclasses.replace(pki.pki, settings=down))
    result = offline.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    outcomes = []
    for _ in range(2):
        with transaction(pki.sessions) as session:
            session.execute(SignedDocument.__table__.update().where(SignedDocument.id == result.document_id)
                            .values(next_attempt_at=SignedDocument.signed_at))
        outcomes.append(upgrade.upgrade_due(offline))
    assert outcomes[-1] == {"upgraded": 0, "retry": 0, "failed": 1}
    with transaction(pki.sessions) as session:
        assert lifecycle.get_document(session, result.document_id).upgrade_status == "failed"


def test_withdraw_and_supersede(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    a = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED)
    b = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED)
    doc = lifecycle.supersede(pki.pki, a.document_id, b.document_id, "wrong birth date corrected", "token:x")
    assert (doc.status, doc.superseded_by) == ("superseded", b.document_id)
    with pytest.raises(Conflict):
        lifecycle.withdraw(pki.pki, a.document_id, "again", "token:x")
    assert lifecycle.withdraw(pki.pki, b.document_id, "issued in error", "token:x").status == "withdrawn"
    with pytest.raises(SigningRefused, match="withdrawn"):
        pki.signing.sign(request(b.pdf, specialist), actor="test", activation=CONSENTED)


def test_cms_is_built_once(pki: Container, specialist: str, sample_pdf: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The /Contents hole is sized up front: the keystore signs exactly once per signature (no dry run)."""
    from signing.create.signer import KeyStoreSigner

    calls: list[bool] = []
    original = KeyStoreSigner.async_sign_raw

    async def counting(self, data, digest_algorithm, dry_run=False):  # type: ignore[no-untyped-def]
        calls.append(dry_run)
        return await original(self, data, digest_algorithm, dry_run)

    monkeypatch.setattr(KeyStoreSigner, "async_sign_raw", counting)
    pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    assert calls == [False]


def test_der_of_signature_is_cms_signed_data(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    result = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    sig = PdfFileReader(io.BytesIO(result.pdf)).embedded_regular_signatures[0]
    unsigned = sig.signed_data["signer_infos"][0]["unsigned_attrs"]
    assert [a["type"].native for a in unsigned] == ["signature_time_stamp_token"]
    token = unsigned[0]["values"][0]
    assert token["content_type"].native == "signed_data"


def test_mutated_pdfs_sign_or_fail_cleanly(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """Truncated and bit-flipped copies of a real PDF: each signs, or raises a clear InvalidInput."""
    import random

    rng = random.Random(20261122)
    outcomes = {"signed": 0, "refused": 0}
    for _ in range(40):
        data = bytearray(sample_pdf)
        if rng.random() < 0.2:
            del data[rng.randrange(len(data) // 2, len(data)):]
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            pki.signing.sign(request(bytes(data), specialist, "B-T", appearance=AppearanceOptions()), actor="fuzz", activation=CONSENTED)
            outcomes["signed"] += 1
        except InvalidInput as exc:
            assert exc.message and exc.code in ("unreadable_pdf", "encrypted_pdf", "bad_appearance", "pdf_no_pages",
                                                "pdf_page_tree_broken"), exc.code
            outcomes["refused"] += 1
    assert outcomes["signed"] + outcomes["refused"] == 40
    assert documents(pki) == outcomes["signed"]
