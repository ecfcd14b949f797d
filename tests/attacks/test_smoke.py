"""A few attack-suite cases on both databases (the rest of tests/attacks runs on SQLite only): the
registry lookups behind the verdict are the database's part."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from tests.helpers.db import database_url

from . import documents, doors, forge
from .workflows import specialist_then_seal


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request, tmp_path) as url:
        yield url


def test_overlay_on_approval_is_not_genuine(pki: Container, client: TestClient, specialist: str, sample_pdf: bytes,
                                            tmp_path: Path) -> None:
    signed = documents.sign(pki, specialist, sample_pdf, "approval")

    doors.assert_refused_everywhere(pki, client, forge.overlay_signature_field(signed.pdf), signed.document_id,
                                    tmp_path)


def test_specialist_then_seal_is_genuine(pki: Container, client: TestClient, specialist: str, seal: str,
                                         sample_pdf: bytes, tmp_path: Path) -> None:
    signed = specialist_then_seal(pki, sample_pdf, specialist, seal)

    doors.assert_genuine_everywhere(pki, client, signed.pdf, signed.document_id, tmp_path)
