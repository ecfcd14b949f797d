"""Honest workflows, as kyso's clients run them: every later signature, DSS update and document
timestamp in these files is one issue 15 calls accountable, so each must stay genuine."""
from __future__ import annotations

import dataclasses

from api.container import Container
from core.db import transaction
from signing.create import upgrade
from signing.create.service import SigningService
from signing.registry import lifecycle
from signing.registry.models import SignedDocument
from tests.helpers.signing import CONSENTED, issue_credential

from .documents import Signed, request


def _sign(pki: Container, pdf: bytes, credential: str, level: str = "B-LT", certify: bool = False,
          visible: bool = False) -> Signed:
    result = pki.signing.sign(request(pdf, credential, level, certify=certify, visible=visible), actor="test", activation=CONSENTED)
    return Signed(result.pdf, result.document_id)


def specialist_then_seal(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, _sign(pki, pdf, specialist).pdf, seal)


def visible_specialist_then_seal(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    """With kyso's own visible stamps (signature image, seal, QR code): registered appearances that a
    visual comparison must account for, not report."""
    return _sign(pki, _sign(pki, pdf, specialist, visible=True).pdf, seal, visible=True)


def certified_then_seal(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, _sign(pki, pdf, specialist, certify=True).pdf, seal)


def two_specialists_then_seal(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    colleague = issue_credential(pki, name="Trần Văn Bình", title="Công chức Văn phòng - Thống kê",
                                 id_number="001190000002")
    return _sign(pki, _sign(pki, _sign(pki, pdf, specialist).pdf, colleague).pdf, seal)


def b_lta(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, pdf, specialist, "B-LTA")


def b_b_upgraded_later(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    """Signed while the TSA was down (B-B, upgrade pending), raised to B-LT by the background upgrader."""
    down = pki.settings.model_copy(update={"tsa_url": "http://127.0.0.1:9/tsa", "tsa_timeout_seconds": 1})
    first = SigningService(dataclasses.replace(pki.pki, settings=down)).sign(request(pdf, specialist, "B-LT"),
                                                                             actor="test", activation=CONSENTED)
    assert first.level == "B-B" and first.pending_upgrade
    with transaction(pki.sessions) as session:
        session.execute(SignedDocument.__table__.update().where(SignedDocument.id == first.document_id)
                        .values(next_attempt_at=SignedDocument.signed_at))
    assert upgrade.upgrade_due(pki.signing)["upgraded"] == 1
    with transaction(pki.sessions) as session:
        doc = lifecycle.get_document(session, first.document_id)
        assert doc.level == "B-LT"
        return Signed(lifecycle.file_bytes(session, pki.settings, lifecycle.get_file(session, doc.id)), doc.id)


def approval_alone(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, pdf, specialist, "B-T")


def certified_alone(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, pdf, specialist, "B-T", certify=True)


WORKFLOWS = [approval_alone, certified_alone, specialist_then_seal, visible_specialist_then_seal, certified_then_seal,
             two_specialists_then_seal, b_lta, b_b_upgraded_later]
