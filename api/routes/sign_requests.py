"""REST v1: signing requests that wait for the specialist's approval on their page (/me).

For software that cannot collect a PIN: it submits PDFs for a specialist's credential, the
specialist approves them (PIN + fresh code, bound to these documents' hashes) or rejects them,
and the software polls the request. ``approve`` here is the one place an approval is carried out;
the page calls it.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from core.db import transaction
from core.errors import InvalidInput, KysoError
from signing.activation import factors, requests
from signing.activation.models import RequestStatus
from signing.activation.sole_control import SADActivation, document_hash, needs_activation
from signing.create import preview
from signing.errors import SigningRefused

from ..container import Container
from ..deps import CanRead, CanSign, ContainerDep
from ..errors import status_for
from ..schemas import API_ERRORS
from ..schemas_signing import BatchMetadata, SignMetadata
from ..uploads import read_pdf

router = APIRouter(prefix="/api/v1/sign/requests", tags=["signing"], responses=API_ERRORS)


class RequestItemOut(BaseModel):
    index: int
    filename: str | None
    status: str = Field(description="pending | signed | failed")
    document_id: str | None = None
    verify_url: str | None = None
    error: dict[str, Any] | None = None


class SigningRequestOut(BaseModel):
    id: str
    status: str = Field(description="pending | approved (being signed) | signed | partly_signed | failed | rejected "
                                    "| expired")
    credential_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    decided_at: dt.datetime | None
    reason: str | None = Field(description="The specialist's reason, when rejected")
    approve_url: str = Field(description="Where the specialist signs in to approve it")
    items: list[RequestItemOut]


def describe(container: Container, request_id: str, *, client: str | None = None,
             credential_id: str | None = None) -> SigningRequestOut:
    base = container.settings.base_url
    with transaction(container.sessions) as session:
        row = requests.get(session, request_id, client=client, credential_id=credential_id)
        return SigningRequestOut(
            id=row.id, status=row.status, credential_id=row.credential_id, created_at=row.created_at,
            expires_at=row.expires_at, decided_at=row.decided_at, reason=row.reason, approve_url=f"{base}/me",
            items=[RequestItemOut(index=i.position, filename=i.filename, status=i.status, document_id=i.document_id,
                                  verify_url=f"{base}/v/{i.document_id}" if i.document_id else None,
                                  error=json.loads(i.error) if i.error else None)
                   for i in requests.items(session, row.id)])


@router.post("", response_model=SigningRequestOut, status_code=202,
             summary="Submit PDFs for a specialist to approve on their page (no PIN needed here)",
             description="Multipart like /sign/batch: repeated `files` parts and one `metadata` JSON part "
                         "({defaults, items}); every item names the same specialist credential. Each item is checked "
                         "now (scope, metadata, policy, PDF) and stored; the specialist approves the whole request "
                         "with their PIN and a fresh code at `approve_url`. Poll GET /api/v1/sign/requests/{id}.")
async def submit(container: ContainerDep, access: CanSign,
                 files: Annotated[list[UploadFile], File(description="The PDFs")],
                 metadata: Annotated[str, Form(description="JSON: {defaults: SignMetadata, items: [overrides]}")],
                 note: Annotated[str | None, Form(max_length=500, description="Shown to the specialist")] = None,
                 ) -> SigningRequestOut:
    from .signing import _metadata  # one parser of metadata parts for every signing route

    batch = _metadata(metadata, BatchMetadata)
    limit = min(container.settings.max_batch_items, factors.MAX_HASHES_PER_SAD)
    if len(files) > limit:
        raise InvalidInput(f"a signing request holds at most {limit} files; this one has {len(files)}",
                           code="batch_too_large")
    if batch.items and len(batch.items) != len(files):
        raise InvalidInput(f"metadata.items has {len(batch.items)} entries for {len(files)} files")
    new: list[requests.NewItem] = []
    credential: str | None = None
    for index, upload in enumerate(files):
        overrides = batch.items[index] if batch.items else {}
        meta: SignMetadata = _metadata(batch.defaults.model_dump() | overrides, SignMetadata)
        if meta.sad:
            raise InvalidInput("a signing request carries no SAD: the specialist authorizes it on their page",
                               code="invalid_metadata")
        if credential not in (None, meta.credential_id):
            raise InvalidInput("every document of a signing request names the same credential (one specialist "
                               "approves it); submit one request per specialist", code="invalid_metadata")
        credential = meta.credential_id
        await run_in_threadpool(access.check_sign, meta.commune_code, meta.document_type, item=index)
        await run_in_threadpool(_check_now, container, meta, index)
        pdf = await read_pdf(upload, container.settings.max_pdf_bytes)
        await run_in_threadpool(_check_pdf, container, pdf, index)
        new.append(requests.NewItem(upload.filename, meta.model_dump(exclude={"sad"}), pdf))
    if credential is None:
        raise InvalidInput("send at least one file", code="invalid_request")

    def store() -> str:
        with transaction(container.sessions) as session:
            return requests.submit(session, credential, access.principal.actor, new, note).id

    request_id = await run_in_threadpool(store)
    return await run_in_threadpool(describe, container, request_id, client=access.principal.actor)


def _check_now(container: Container, meta: SignMetadata, index: int) -> None:
    """Refuse at submission what could never be signed: the specialist should not approve a dead end."""
    material = container.signing.material.signer(meta.credential_id)
    if not needs_activation(material):
        raise InvalidInput(f"credential {meta.credential_id} is an organisation seal: sign with it directly "
                           "(POST /api/v1/sign); signing requests are for a specialist's approval",
                           code="invalid_metadata")
    decision = container.signing.explain(meta.credential_id, meta.document_type, meta.commune_code)
    if not decision.allowed:
        raise SigningRefused(f"item {index}: the signing policy refuses this ({decision.rule}): {decision.reason}",
                             rule=decision.rule)


def _check_pdf(container: Container, pdf: bytes, index: int) -> None:
    """The file itself, as /sign would judge it (readable, unencrypted, pages, repairable, not a withdrawn or older
    version), so a specialist never approves a document that cannot be signed; the same error, naming the item."""
    try:
        container.signing.check_input(pdf)
        preview.check_nothing_hidden(pdf)  # what she approves is what the preview shows her, all of it
    except KysoError as exc:
        exc.message = f"item {index}: {exc.message}"
        exc.args = (exc.message,)
        raise


@router.get("/{request_id}", response_model=SigningRequestOut, summary="A signing request's status and results")
def get_request(request_id: str, container: ContainerDep, access: CanRead) -> SigningRequestOut:
    """Only the client that submitted it sees it; to anyone else it does not exist (404)."""
    return describe(container, request_id, client=access.principal.actor)


def approve(container: Container, request_id: str, credential_id: str, pin: str, otp: str, *,
            seen: list[str] | None = None, address: str = "local") -> SigningRequestOut:
    """The specialist's approval: PIN + code authorize exactly the request's documents, the request is
    claimed once, and each document is signed for the submitting client (idempotent per item). ``seen``: the
    documents' hashes she confirmed having seen page by page, for the approval's audit entry."""
    with transaction(container.sessions) as session:
        row = requests.get(session, request_id, credential_id=credential_id)
        if row.status != RequestStatus.PENDING:
            raise requests.SigningRequestClosed(f"signing request {request_id} is {row.status}, not waiting")
        client = row.client
        stored = [(i.position, i.metadata_json, i.pdf) for i in requests.items(session, request_id)]
    hashes = [document_hash(pdf) for _, _, pdf in stored]
    sad = factors.authorize(container.pki, credential_id, pin, otp, hashes, "sha256", len(hashes), client,
                            purpose=factors.SADPurpose.DOCUMENTS, address=address)
    with transaction(container.sessions) as session:
        requests.claim(session, request_id, credential_id, seen=seen)
    group = SADActivation(container.pki, credential_id, sad.token, hashes, client)
    for position, metadata, pdf in stored:
        try:
            result = container.signing.sign(SignMetadata.model_validate_json(metadata).to_request(pdf), actor=client,
                                             idempotency_key=f"{request_id}:{position}", activation=group)
            outcome: dict[str, Any] = {"document_id": result.document_id}
        except KysoError as exc:
            outcome = {"error": {"code": exc.code, "message": exc.message, "status": status_for(exc)}}
        with transaction(container.sessions) as session:
            requests.record_item(session, request_id, position, **outcome)
    with transaction(container.sessions) as session:
        requests.finish(session, request_id)
    return describe(container, request_id, credential_id=credential_id)


def reject(container: Container, request_id: str, credential_id: str, reason: str | None) -> None:
    with transaction(container.sessions) as session:
        requests.get(session, request_id, credential_id=credential_id)
        requests.reject(session, request_id, credential_id, reason)
