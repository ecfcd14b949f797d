"""Interop: pyHanko's own CSC client (``CSCSigner``) signs a PDF through a running ``kyso serve``.

The specialist's PIN and the code of their authenticator app go to kyso's ``credentials/authorize``
for exactly the hashes pyHanko is about to sign (SCAL 2), as a standard CSC client asks, with no kyso
extension: the SAD is then for signHash (CSC's meaning). pyHanko calls ``signatures/signHash`` with
it, assembles the CMS itself, and pyHanko's validator accepts the result against kyso's root; kyso
recorded the raw signature (credential, hash, client) in ``signhash_signatures``.
"""
from __future__ import annotations

import asyncio
import json
from io import BytesIO

import aiohttp
import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationInfo,
    CSCAuthorizationManager,
    CSCCredentialInfo,
    CSCServiceSessionInfo,
    CSCSigner,
    fetch_certs_in_csc_credential,
)
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit, clock
from core.db import transaction
from signing.activation.models import SignHashSignature
from signing.registry import records
from signing.verify import pdf_facts
from tests.helpers.activation import PIN, enroll
from tests.helpers.api import new_token
from tests.helpers.clock import FrozenClock
from tests.helpers.servers import LiveServer
from tests.helpers.signing import issue_credential, root_pem
from tests.helpers.validation import validate_all


class SpecialistAuthorization(CSCAuthorizationManager):
    """Asks kyso for a SAD bound to the hashes being signed, with the specialist's PIN and current code."""

    def __init__(self, session_info: CSCServiceSessionInfo, credential_info: CSCCredentialInfo,
                 http: aiohttp.ClientSession, pin: str, otp: str) -> None:
        super().__init__(session_info, credential_info)
        self.http, self.pin, self.otp = http, pin, otp
        self.refusals: list[dict[str, str]] = []

    async def authorize_signature(self, hash_b64s: list[str]) -> CSCAuthorizationInfo:
        request = self.format_csc_auth_request(pin=self.pin, otp=self.otp, hash_b64s=hash_b64s)
        async with self.http.post(self.csc_session_info.endpoint_url("credentials/authorize"),
                                  headers=self.auth_headers, json=request) as response:
            body = await response.json()
            if response.status != 200:
                self.refusals.append(body)  # pyHanko reports only "No signing results available"
                raise SigningError(f"kyso refused the authorization: {body}")
        return self.parse_csc_auth_response(body)


async def _sign(server: LiveServer, credential: str, token: str, otp: str, pdf: bytes, *,
                pin: str = PIN, refusals: list[dict[str, str]] | None = None) -> bytes:
    async with aiohttp.ClientSession() as http:
        session_info = CSCServiceSessionInfo(server.url, credential, oauth_token=token, api_ver="v2")
        credential_info = await fetch_certs_in_csc_credential(http, session_info)
        assert credential_info.hash_pinning_required and len(credential_info.chain) == 2
        authorization = SpecialistAuthorization(session_info, credential_info, http, pin, otp)
        signer = CSCSigner(http, authorization)
        meta = signers.PdfSignatureMetadata(field_name="Signature1", md_algorithm="sha256")
        try:
            out = await signers.async_sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta, signer=signer)
        finally:
            if refusals is not None:
                refusals.extend(authorization.refusals)
        return out.getvalue()


def test_pyhanko_csc_signer_signs_a_pdf_through_kyso(live_pki: tuple[Container, LiveServer], sample_pdf: bytes) -> None:
    container, server = live_pki
    credential = issue_credential(container)
    # enrolled and confirmed two minutes ago (as at the operator's desk), so "now" is a fresh TOTP step
    past = FrozenClock()
    past.advance(-120)
    clock.set_clock(lambda: past.now)
    try:
        phone = enroll(container, credential, past)
    finally:
        clock.set_clock(None)
    phone.clock = None  # the phone and the server now both read the real time
    token = new_token(container, tokens.Role.client)

    code = phone.code()
    signed = asyncio.run(_sign(server, credential, token, code, sample_pdf))

    [verdict] = validate_all(signed, root_pem(container), ltv=False)
    assert verdict.intact and verdict.valid and verdict.trusted and verdict.bottom_line, verdict
    assert verdict.signature_mechanism == "sha256_ecdsa" and verdict.md_algorithm == "sha256"
    with transaction(container.sessions) as session:
        entries = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.subject == credential)
                                  .order_by(audit.AuditEntry.seq)).scalars().all()
    actions = [e.action for e in entries]
    assert actions[-3:] == ["activation:authorize:grant", "activation:sad:consume", "activation:signhash:sign"], actions
    assert json.loads(entries[-3].details)["purpose"] == "hash"
    consumed = json.loads(entries[-2].details)
    assert consumed["count"] == 1 and consumed["purpose"] == "hash" and entries[-2].actor.startswith("token:client-")
    made = json.loads(entries[-1].details)
    with transaction(container.sessions) as session:
        [row] = session.execute(select(SignHashSignature).where(SignHashSignature.credential_id == credential)).scalars()
        assert (row.client, row.hash_algo, [row.hash], [row.signature_sha256]) == (
            entries[-1].actor, "sha256", made["hashes"], made["signatures_sha256"])
    [value] = pdf_facts.signature_values(signed)  # the CMS pyHanko built holds the value kyso recorded
    assert records.signature_digest(value.value) == row.signature_sha256

    # the same code cannot authorize a second signature; a wrong PIN is refused too
    refusals: list[dict[str, str]] = []
    with pytest.raises(SigningError):
        asyncio.run(_sign(server, credential, token, code, sample_pdf, refusals=refusals))
    with pytest.raises(SigningError):
        asyncio.run(_sign(server, credential, token, phone.code(), sample_pdf, pin="999999", refusals=refusals))
    assert [r["error"] for r in refusals] == ["invalid_activation_data"] * 2
    assert refusals[-1]["error_description"].endswith("98 attempt(s) left before the credential locks")
    with transaction(container.sessions) as session:
        denials = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.subject == credential, audit.AuditEntry.action == "activation:authorize:deny")).scalars()
        assert next(json.loads(e.details)["why"] for e in denials) == "otp_replayed"
