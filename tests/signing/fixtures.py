"""Fixtures for signing tests (registered in tests/conftest.py): credentials, a client token, sample PDFs."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from api import tokens
from api.container import Container
from core.db import transaction
from hsm import KeyType
from pki import issuance, store
from pki.names import SubjectInfo
from tests.conftest import new_token

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
COMMUNE = "00004"  # Phường Ba Đình, Hà Nội


def issue_credential(container: Container, profile: str = "specialist", *, name: str = "Nguyễn Thị Hồng Nhung",
                     title: str | None = "Công chức Tư pháp - Hộ tịch", key_type: KeyType | None = None,
                     commune: str = COMMUNE, id_number: str | None = "001190000001") -> str:
    subject = (SubjectInfo(common_name=name, title=title, id_number=id_number) if profile == "specialist"
               else SubjectInfo(common_name=name))
    result = issuance.issue(container.pki, issuance.IssueRequest(profile=profile, subject=subject,
                                                                 commune_code=commune, key_type=key_type), actor="test")
    assert result.credential_id
    return result.credential_id


@pytest.fixture
def specialist(pki: Container) -> str:
    return issue_credential(pki)


@pytest.fixture
def seal(pki: Container) -> str:
    return issue_credential(pki, "seal", name="Ủy ban nhân dân Phường Ba Đình")


@pytest.fixture
def client_headers(pki: Container) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(pki, tokens.Role.client)}"}


@pytest.fixture
def sample_pdf() -> bytes:
    return (CORPUS / "fourpages.pdf").read_bytes()


def root_pem(container: Container) -> bytes:
    with transaction(container.sessions) as session:
        root = next(ca for ca in store.list_cas(session) if ca.role == "root")
        from cryptography import x509

        return x509.load_der_x509_certificate(root.cert_der).public_bytes(serialization.Encoding.PEM)
