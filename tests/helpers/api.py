"""The HTTP API in tests: tokens, a TestClient, and the requests the API tests send."""
from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable, Iterator

import pytest
from fastapi.testclient import TestClient

from api import tokens
from api.app import create_app
from api.container import Container
from core.db import transaction
from tests.helpers.signing import COMMUNE, SpecialistPhone, issue_credential

OTHER_COMMUNE = "00008"  # Phường Ba Đình's neighbour in Hà Nội (province 01)
OTHER_PROVINCE_COMMUNE = "01273"  # in Cao Bằng (province 04)


def new_token(container: Container, role: tokens.Role, name: str | None = None) -> str:
    with transaction(container.sessions) as session:
        return tokens.create(session, name or f"{role.value}-{secrets.token_hex(3)}", role, "test")


@pytest.fixture
def client(pki: Container) -> Iterator[TestClient]:
    with TestClient(create_app(pki, scheduler=False), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def operator_headers(pki: Container) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator)}"}


@pytest.fixture
def client_headers(pki: Container) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(pki, tokens.Role.client)}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scoped(container: Container, name: str, *, communes: Iterable[str] | None = None,
           operations: Iterable[str] | None = None, document_types: Iterable[str] | None = None,
           expires_at: dt.datetime | None = None) -> dict[str, str]:
    """Headers of a new client token limited to these communes, operations and document types."""
    with transaction(container.sessions) as session:
        scope = tokens.build_scope(session, units=communes, operations=operations, document_types=document_types)
        token = tokens.create(session, name, tokens.Role.client, "test", scope=scope, expires_at=expires_at)
    return bearer(token)


@pytest.fixture
def other_specialist(pki: Container) -> str:
    """A specialist of the neighbouring commune (OTHER_COMMUNE)."""
    return issue_credential(pki, name="Trần Văn Bình", commune=OTHER_COMMUNE, id_number="001190000002")


def meta(credential: str, **extra: object) -> dict[str, object]:
    """The metadata of a /api/v1/sign request for ``credential`` in COMMUNE (invisible, the default level)."""
    return {"document_type": "dossier-result", "commune_code": COMMUNE, "credential_id": credential,
            "dossier_number": "HS-1", "appearance": {"visible": False}, **extra}


def commune_meta(credential: str, commune: str = COMMUNE, **extra: object) -> dict[str, object]:
    """The same for any commune, at level B-B."""
    return {"document_type": "dossier-result", "commune_code": commune, "credential_id": credential,
            "dossier_number": "HS-1", "level": "B-B", "appearance": {"visible": False}, **extra}


def sign(client: TestClient, headers: dict[str, str], pdf: bytes, metadata: dict,  # type: ignore[no-untyped-def]
         phone: SpecialistPhone | None = None, **kw: object):
    """POST /api/v1/sign; with ``phone``, the specialist first authorizes exactly this PDF (a SAD)."""
    if phone is not None and "sad" not in metadata:
        metadata = {**metadata, "sad": phone.authorize(client, headers, pdf)}
    return client.post("/api/v1/sign", files={"file": ("in.pdf", pdf, "application/pdf")},
                       data={"metadata": json.dumps(metadata)}, headers=headers, **kw)


def count(client: TestClient, headers: dict[str, str]) -> int:
    return client.get("/api/v1/documents", headers=headers).json()["total"]
