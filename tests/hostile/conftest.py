"""One kyso per test module for hostile-input tests: SQLite, the test hierarchy, a token per role, a
specialist and a seal credential. Module-scoped because hypothesis and schemathesis run many examples
against one app, and rebuilding a PKI per example would cost seconds each.

Hostile input is about parsing, not storage: these tests run on SQLite only (the PostgreSQL half of
the suite covers the same routes with valid input).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api import tokens
from api.app import create_app
from api.container import Container, build
from core.db import transaction
from pki.authorities import init_hierarchy
from policies.documents import DOCUMENTS_FILE
from tests.conftest import ISSUING, ROOT, make_settings, new_token
from tests.signing.fixtures import CORPUS, COMMUNE, SpecialistPhone, issue_credential


@dataclass
class Kyso:
    container: Container
    client: TestClient
    headers: dict[str, dict[str, str]]  # role value (and scoped-client) -> Authorization header
    specialist: str
    seal: str
    phone: SpecialistPhone  # authorizes exact PDFs for the specialist (a SAD per PDF)

    def sign(self, pdf: bytes, *, visible: bool = False, authorize: bool = True, **extra: object) -> httpx.Response:
        """POST /api/v1/sign as the client token, the specialist signing ``pdf`` at B-B (no TSA round trip)."""
        metadata = {"document_type": "dossier-result", "commune_code": COMMUNE, "credential_id": self.specialist,
                    "level": "B-B", "appearance": {"visible": visible}, **extra}
        if authorize:
            metadata["sad"] = self.phone.authorize(self.client, self.headers["client"], pdf)
        return self.client.post("/api/v1/sign", files={"file": ("in.pdf", pdf, "application/pdf")},
                                data={"metadata": json.dumps(metadata)}, headers=self.headers["client"])


@pytest.fixture(scope="module")
def kyso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kyso]:
    home = tmp_path_factory.mktemp("hostile")
    # the open routes' per-address rate limit would answer most generated requests with 429 (tested elsewhere)
    policy_file = home / "document-types.yaml"  # a copy the policy tests may break and restore
    policy_file.write_bytes(DOCUMENTS_FILE.read_bytes())
    container = build(make_settings(home / "home", f"sqlite:///{home / 'kyso.db'}", verify_rate_per_second=10_000.0,
                                    verify_burst=100_000, policy_file=policy_file))
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    specialist = issue_credential(container)
    seal = issue_credential(container, "seal", name="Ủy ban nhân dân Phường Ba Đình")
    container.settings.report_seal_credential = seal  # PDF verification reports are sealed (as `kyso demo` does)
    headers = {role.value: {"Authorization": f"Bearer {new_token(container, role)}"} for role in tokens.Role}
    with transaction(container.sessions) as session:  # another commune, reading only: most things are hidden
        scope = tokens.build_scope(session, units=["00008"], operations=["read"], document_types=["dossier-result"])
        headers["scoped-client"] = {"Authorization": "Bearer " + tokens.create(
            session, "scoped-client", tokens.Role.client, "test", scope=scope)}
    with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as client:
        yield Kyso(container, client, headers, specialist, seal, SpecialistPhone(container, specialist))
    container.engine.dispose()


def corpus_pdfs() -> list[bytes]:
    """The small real PDFs of tests/corpus (at most 200 kB each: mutation is about structure, not size)."""
    return [p.read_bytes() for p in sorted(Path(CORPUS).glob("*.pdf")) if p.stat().st_size <= 200_000]


def assert_refused_clearly(response: httpx.Response, *statuses: int) -> dict:
    """A 4xx (one of ``statuses`` when given) in kyso's error shape, with a code and a sentence."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:500])
    error = response.json()["error"]
    assert error["code"] and len(error["message"]) > 10, error
    return error
