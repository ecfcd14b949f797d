"""Hostile-input tests' kyso (the ``kyso`` fixture in tests/hostile/conftest.py makes one per module:
SQLite, the test hierarchy, a token per role, a specialist and a seal credential) and how they judge
refusals. Module-scoped because hypothesis and schemathesis run many examples
against one app, and rebuilding a PKI per example would cost seconds each.

Hostile input is about parsing, not storage: these tests run on SQLite only (the PostgreSQL half of
the suite covers the same routes with valid input).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from api.container import Container
from tests.helpers.signing import COMMUNE, CORPUS, SpecialistPhone


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
