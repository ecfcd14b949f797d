"""Signing in tests: credentials, the specialist's phone, sample PDFs, sign requests.

The fixtures here (``specialist``, ``seal``, ``phone``, ``sample_pdf``) are registered for every test."""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.container import Container
from core import clock
from core.db import transaction
from hsm import KeyType
from pki import issuance, store
from pki.names import SubjectInfo
from signing.create.service import AppearanceOptions, SignRequest
from signing.material import SignerMaterial
from signing.registry.models import SignedDocument
from tests.helpers.activation import PIN

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
INVISIBLE = AppearanceOptions(visible=False)
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
def sample_pdf() -> bytes:
    return (CORPUS / "fourpages.pdf").read_bytes()


def request(pdf: bytes, credential: str, level: str = "B-B", **extra: object) -> SignRequest:
    """A SigningService request for ``pdf`` in COMMUNE, invisible unless ``appearance`` says otherwise."""
    extra.setdefault("appearance", INVISIBLE)
    return SignRequest(pdf=pdf, document_type="dossier-result", commune_code=COMMUNE, credential_id=credential,
                       level=level, dossier_number="HS-2026-0001", **extra)  # type: ignore[arg-type]


class OutOfBandConsent:
    """Test-only ``Activation`` (``signing.create.consent``): stands for a consent the test gives out of band,
    so in-process tests of signing itself (PAdES, the registry, verification) need not enrol a phone for each
    signature. It exists only here; application code has no activation that lets a specialist's key sign
    without her SAD (tests/attacks/test_sole_control.py tries every door)."""

    def spend(self, material: SignerMaterial, pdf: bytes) -> None:
        return None


CONSENTED = OutOfBandConsent()


def documents(container: Container) -> int:
    """How many documents the registry holds."""
    with transaction(container.sessions) as session:
        return session.execute(select(func.count()).select_from(SignedDocument)).scalar_one()


def root_pem(container: Container) -> bytes:
    with transaction(container.sessions) as session:
        root = next(ca for ca in store.list_cas(session) if ca.role == "root")
        from cryptography import x509

        return x509.load_der_x509_certificate(root.cert_der).public_bytes(serialization.Encoding.PEM)


class SpecialistPhone:
    """A specialist enrolled with a PIN and an authenticator app, authorizing exact PDFs the way their
    software does: CSC ``credentials/authorize`` over HTTP with PIN + a fresh one-time code.

    A TOTP code is accepted once per 30-second step, and tests authorize faster than that: each
    authorization moves ``core.clock`` to the next unused step for the duration of that one call
    (the SAD it returns stays valid for real time), then puts the clock back."""

    def __init__(self, container: Container, credential_id: str, pin: str = PIN) -> None:
        from signing.activation import crypto as sec, enrolment

        self.container, self.credential_id, self.pin = container, credential_id, pin
        self._sec = sec
        self._last_step = sec.step_at(clock.now()) - 1
        issued = enrolment.issue(container.pki, credential_id, "token:operator")
        self.secret = sec.secret_from_uri(enrolment.redeem(container.pki, issued.code, pin, pin).uri)
        with self._next_step() as code:
            enrolment.finish(container.pki, issued.code, code)

    @contextlib.contextmanager
    def _next_step(self) -> Iterator[str]:
        """The code of the next unused time step, with the service clock inside that step meanwhile."""
        step = max(self._sec.step_at(clock.now()), self._last_step + 1)
        self._last_step = step
        when = dt.datetime.fromtimestamp(step * self._sec.TOTP_PERIOD + 1, dt.UTC)
        previous = clock.get_clock()
        clock.set_clock(lambda: when)
        try:
            yield self._sec.totp(self.secret, step)
        finally:
            clock.set_clock(previous)

    def fresh_code(self) -> contextlib.AbstractContextManager[str]:
        """A one-time code for an in-process approval, the clock inside its step while the block runs."""
        return self._next_step()

    def authorize(self, client: TestClient, headers: dict[str, str], *pdfs: bytes,
                  credential_id: str | None = None, purpose: str = "documents") -> str:
        """A SAD for exactly these PDFs (their SHA-256), issued to the client ``headers`` name, for signing
        documents (``purpose="hash"``: the same hashes, for CSC signHash)."""
        hashes = [base64.b64encode(hashlib.sha256(pdf).digest()).decode() for pdf in pdfs]
        with self._next_step() as code:
            r = client.post("/csc/v2/credentials/authorize", headers=headers, json={
                "credentialID": credential_id or self.credential_id, "numSignatures": len(hashes), "hashes": hashes,
                "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                "authData": [{"id": "PIN", "value": self.pin}, {"id": "OTP", "value": code}],
                "kyso": {"purpose": purpose}})
        assert r.status_code == 200, r.text
        return r.json()["SAD"]

    def authorize_for(self, actor: str, *pdfs: bytes) -> str:
        """The same, in process, for a server that runs elsewhere (its clock cannot be moved from here)."""
        from signing.activation import factors

        hashes = [hashlib.sha256(pdf).digest() for pdf in pdfs]
        with self._next_step() as code:
            return factors.authorize(self.container.pki, self.credential_id, self.pin, code, hashes, "sha256",
                                        len(hashes), actor, purpose=factors.SADPurpose.DOCUMENTS).token


@pytest.fixture
def phone(pki: Container, specialist: str) -> SpecialistPhone:
    return SpecialistPhone(pki, specialist)
