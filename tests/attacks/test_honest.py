"""Honest workflows stay genuine through every door once the verifier stops being fooled: each later
signature, DSS update and document timestamp here is one issue 15 calls accountable."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from core.db import transaction
from signing import registry, upgrade
from signing.models import SignedDocument
from signing.service import SigningService
from tests.signing.fixtures import issue_credential
from tests.signing.test_service import request

from . import doors
from .documents import Signed


def _sign(pki: Container, pdf: bytes, credential: str, level: str = "B-LT", certify: bool = False) -> Signed:
    result = pki.signing.sign(request(pdf, credential, level, certify=certify), actor="test")
    return Signed(result.pdf, result.document_id)


def specialist_then_seal(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, _sign(pki, pdf, specialist).pdf, seal)


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
                                                                             actor="test")
    assert first.level == "B-B" and first.pending_upgrade
    with transaction(pki.sessions) as session:
        session.execute(SignedDocument.__table__.update().where(SignedDocument.id == first.document_id)
                        .values(next_attempt_at=SignedDocument.signed_at))
    assert upgrade.upgrade_due(pki.signing)["upgraded"] == 1
    with transaction(pki.sessions) as session:
        doc = registry.get_document(session, first.document_id)
        assert doc.level == "B-LT"
        return Signed(registry.get_file(session, doc.id).pdf, doc.id)


def approval_alone(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, pdf, specialist, "B-T")


def certified_alone(pki: Container, pdf: bytes, specialist: str, seal: str) -> Signed:
    return _sign(pki, pdf, specialist, "B-T", certify=True)


WORKFLOWS = [approval_alone, certified_alone, specialist_then_seal, certified_then_seal, two_specialists_then_seal,
             b_lta, b_b_upgraded_later]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.__name__)
def test_honest_workflow_is_genuine_at_every_door(pki: Container, client: TestClient, specialist: str, seal: str,
                                                  sample_pdf: bytes, tmp_path: Path, workflow) -> None:  # type: ignore[no-untyped-def]
    signed = workflow(pki, sample_pdf, specialist, seal)

    doors.assert_genuine_everywhere(pki, client, signed.pdf, signed.document_id, tmp_path)
    report = pki.verifier.verify(signed.pdf)
    assert not report.modifications and not report.visual_differences, doors.describe(report)
