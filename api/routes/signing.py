"""REST v1: sign one PDF or a batch, and the registry of signed documents."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from core.errors import InvalidInput, KysoError
from signing.activation.sole_control import Required, SADActivation, document_hash
from signing.create.consent import Activation
from signing.errors import StoredFileDamaged, UnknownDocument
from signing.registry import lifecycle
from signing.registry.models import DocumentFile, SignedDocument

from ..container import Container
from ..deps import CanRead, CanSign, CanSupersede, CanWithdraw, ContainerDep, Operator, ReaderAccess, SessionDep
from ..errors import UnsupportedMediaType, error_body, status_for
from ..schemas import API_ERRORS, error_responses
from ..schemas_signing import (
    BatchItemOut,
    BatchMetadata,
    BatchOut,
    DocumentList,
    DocumentOut,
    DocumentTypeOut,
    SignedOut,
    SignMetadata,
    SupersedeIn,
    WithdrawIn,
)
from ..uploads import read_pdf

router = APIRouter(prefix="/api/v1", tags=["signing"], responses=API_ERRORS)
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="Retry-safe: the same key returns the same result")]
PDF: dict[int | str, dict[str, Any]] = {200: {
    "content": {"application/pdf": {}, "application/json": {"schema": SignedOut.model_json_schema()}},
    "description": "The signed PDF (or JSON with `Accept: application/json`); headers X-Document-Id, "
                   "X-Signature-Level, X-Upgrade-Pending, X-Stamp-New-Page (true: the stamp is on a page added at "
                   "the end, no page had a free place for it)"}}


Model = TypeVar("Model", bound=BaseModel)


def _metadata(raw: str | dict[str, Any], model: type[Model]) -> Model:
    try:
        return model.model_validate(raw) if isinstance(raw, dict) else model.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'metadata'}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"the metadata part is not valid: {problems}", code="invalid_metadata") from None


@router.post("/sign", summary="Sign a PDF (multipart: `file` = the PDF, `metadata` = JSON)",
             response_class=Response, responses=PDF)
async def sign(request: Request, container: ContainerDep, access: CanSign,
               file: Annotated[UploadFile, File(description="The PDF to sign")],
               metadata: Annotated[str, Form(description="JSON: see the SignMetadata schema")],
               idempotency_key: IdempotencyKey = None) -> Response:
    meta = _metadata(metadata, SignMetadata)
    await run_in_threadpool(access.check_sign, meta.commune_code, meta.document_type)
    pdf = await read_pdf(file, container.settings.max_pdf_bytes)
    actor = access.principal.actor
    sad = meta.sad
    activation = (SADActivation(container.pki, meta.credential_id, sad, [document_hash(pdf)], actor)
                  if sad else Required(container.pki, actor))
    result = await run_in_threadpool(container.signing.sign, meta.to_request(pdf), actor=actor,
                                     idempotency_key=idempotency_key, activation=activation)
    headers = {"X-Document-Id": result.document_id, "X-Signature-Level": result.level,
               "X-Upgrade-Pending": "true" if result.pending_upgrade else "false",
               "X-Verify-Url": f"{container.settings.base_url}/v/{result.document_id}",
               "X-Stamp-New-Page": "true" if result.stamp_on_new_page else "false"}
    if "application/json" in request.headers.get("accept", ""):
        body = SignedOut.of(result, container.settings.base_url, with_pdf=True)
        return Response(body.model_dump_json(), media_type="application/json", headers=headers)
    headers["Content-Disposition"] = f'attachment; filename="{result.document_id}.pdf"'
    return Response(result.pdf, media_type="application/pdf", headers=headers)


@router.post("/sign/batch", response_model=BatchOut, summary="Sign several PDFs at once; each succeeds or fails alone",
             description="Multipart: repeated `files` parts and one `metadata` JSON part ({defaults, items}). With "
                         "an Idempotency-Key, item i is recorded under key '<key>:<i>', so a retried batch returns "
                         "the items already signed and signs only the rest.")
async def sign_batch(container: ContainerDep, access: CanSign,
                     files: Annotated[list[UploadFile], File(description="The PDFs")],
                     metadata: Annotated[str, Form(description="JSON: {defaults: SignMetadata, items: [overrides]}")],
                     idempotency_key: IdempotencyKey = None) -> BatchOut:
    batch = _metadata(metadata, BatchMetadata)
    limit = container.settings.max_batch_items
    if len(files) > limit:
        raise InvalidInput(f"a batch holds at most {limit} files; this one has {len(files)}", code="batch_too_large")
    if batch.items and len(batch.items) != len(files):
        raise InvalidInput(f"metadata.items has {len(batch.items)} entries for {len(files)} files")
    actor = access.principal.actor
    prepared: list[tuple[SignMetadata, bytes] | KysoError] = []
    for index, upload in enumerate(files):
        try:
            overrides = batch.items[index] if batch.items else {}
            meta = _metadata(batch.defaults.model_dump() | overrides, SignMetadata)
            await run_in_threadpool(access.check_sign, meta.commune_code, meta.document_type,
                                    item=index)
            prepared.append((meta, await read_pdf(upload, container.settings.max_pdf_bytes)))
        except KysoError as exc:
            prepared.append(exc)
    activations = await run_in_threadpool(_batch_activations, container, prepared, actor, idempotency_key)
    items: list[BatchItemOut] = []
    for index, (upload, entry) in enumerate(zip(files, prepared, strict=True)):
        try:
            if isinstance(entry, KysoError):
                raise entry
            meta, pdf = entry
            key = f"{idempotency_key}:{index}" if idempotency_key else None
            result = await run_in_threadpool(container.signing.sign, meta.to_request(pdf), actor=actor,
                                             idempotency_key=key, activation=activations[index])
            items.append(BatchItemOut(index=index, filename=upload.filename, ok=True,
                                      result=SignedOut.of(result, container.settings.base_url, with_pdf=True)))
        except KysoError as exc:
            body = error_body(exc.code, exc.message, exc.details)["error"]
            body["status"] = status_for(exc)  # type: ignore[index]
            items.append(BatchItemOut(index=index, filename=upload.filename, ok=False, error=body))  # type: ignore[arg-type]
    signed = sum(1 for item in items if item.ok)
    return BatchOut(signed=signed, failed=len(items) - signed, items=items)


def _batch_activations(container: Container, prepared: list[tuple[SignMetadata, bytes] | KysoError], actor: str,
                       idempotency_key: str | None) -> list[Activation]:
    """One ``SADActivation`` per (credential, SAD) in the batch, covering the hashes of its documents that
    still need signing: items an earlier try with this Idempotency-Key already signed are replays and
    spend nothing, so a retried batch goes through with a fresh SAD for only the rest."""
    groups: dict[tuple[str, str], SADActivation] = {}
    chosen: list[Activation] = []
    for index, entry in enumerate(prepared):
        if isinstance(entry, KysoError):
            chosen.append(Required(container.pki, actor))  # never used: the item fails with its own error first
            continue
        meta, pdf = entry
        if not meta.sad:
            chosen.append(Required(container.pki, actor))
            continue
        group = groups.setdefault((meta.credential_id, meta.sad),
                                  SADActivation(container.pki, meta.credential_id, meta.sad, [], actor))
        chosen.append(group)
        try:
            replayed = idempotency_key is not None and container.signing.replay(
                actor, f"{idempotency_key}:{index}", meta.to_request(pdf).fingerprint()) is not None
        except KysoError:
            replayed = False  # the item fails on its own in sign(); its hash does not matter
        if not replayed:
            group.hashes.append(document_hash(pdf))
    return chosen


@router.get("/document-types", response_model=list[DocumentTypeOut], summary="Document types and how they are signed")
def document_types(container: ContainerDep, access: ReaderAccess) -> list[DocumentTypeOut]:
    wanted = access.scope.document_types  # a type-scoped client sees only its types
    return [DocumentTypeOut(**t.model_dump()) for name, t in container.signing.policy.types.items()
            if wanted is None or name in wanted]


@router.get("/documents", response_model=DocumentList, summary="Search the registry of signed documents")
def list_documents(
    container: ContainerDep, session: SessionDep, access: CanRead,
    dossier_number: str | None = None, commune_code: str | None = None, document_type: str | None = None,
    signer_serial: str | None = None, credential_id: str | None = None,
    signed_from: Annotated[dt.datetime | None, Query(description="ISO 8601, inclusive")] = None,
    signed_to: Annotated[dt.datetime | None, Query(description="ISO 8601, exclusive")] = None,
    status: str | None = Query(default=None, pattern="^(valid|withdrawn|superseded)$"),
    level: str | None = Query(default=None, pattern="^B-(B|T|LT|LTA)$"),
    upgrade_status: str | None = Query(default=None, pattern="^(none|pending|failed)$"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=1_000_000_000),  # bounded: a huge one overflowed the database's integer
) -> DocumentList:
    communes, types = access.visible(session)  # a scoped client sees only its communes' documents
    wanted = lifecycle.DocumentFilter(
        commune_codes=communes, document_types=types,
        dossier_number=dossier_number, commune_code=commune_code, document_type=document_type,
        signer_serial=signer_serial.upper() if signer_serial else None, credential_id=credential_id,
        signed_from=signed_from, signed_to=signed_to, status=status, level=level, upgrade_status=upgrade_status,
        limit=limit, offset=offset)
    # from the read replica; nothing found there (a dossier signed a moment ago) is asked of the primary
    rows, total = container.pki.reads.run(lambda s: lifecycle.list_documents(s, wanted), missed=lambda r: r[1] == 0)
    return DocumentList(total=total, items=[DocumentOut.of(r, container.settings.base_url) for r in rows])


@router.get("/documents/{document_id}", response_model=DocumentOut, summary="One signed document's record")
def get_document(document_id: str, container: ContainerDep, session: SessionDep, access: CanRead) -> DocumentOut:
    doc = container.pki.reads.run(lambda s: lifecycle.get_document(s, document_id), miss_errors=(UnknownDocument,))
    access.check_document(session, document_id, doc.commune_code, doc.document_type)
    return DocumentOut.of(doc, container.settings.base_url)


@router.get("/documents/{document_id}/file", summary="The signed PDF (current version, possibly upgraded)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def get_document_file(document_id: str, container: ContainerDep, session: SessionDep, access: CanRead,
                      version: int | None = Query(default=None, ge=1, le=1_000_000)) -> Response:
    def read(s: Session) -> tuple[SignedDocument, DocumentFile | None]:
        doc = lifecycle.get_document(s, document_id)
        try:
            return doc, lifecycle.get_file(s, document_id, version)
        except UnknownDocument:  # no such version: said only after the scope check (it names the versions)
            return doc, None

    # the record and the bytes from the read replica; what it does not have yet from the primary
    doc, row = container.pki.reads.run(read, missed=lambda r: r[1] is None, miss_errors=(UnknownDocument,))
    access.check_document(session, document_id, doc.commune_code, doc.document_type)
    if row is None:
        row = lifecycle.get_file(session, document_id, version)
    found = row
    # rebuilt from the blob store where the row was read; blobs the replica lacks yet come from the primary
    data = container.pki.reads.run(lambda s: lifecycle.file_bytes(s, container.settings, found),
                                   miss_errors=(StoredFileDamaged,))
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{row.document_id}-v{row.version}.pdf"',
        "X-Signature-Level": row.level, "X-Document-Version": str(row.version), "ETag": f'"{row.sha256}"'})


@router.post("/documents/{document_id}/withdraw", response_model=DocumentOut, summary="Withdraw a signed document")
def withdraw(document_id: str, body: WithdrawIn, container: ContainerDep, session: SessionDep,
             access: CanWithdraw) -> DocumentOut:
    current = lifecycle.get_document(session, document_id)
    access.check_document(session, document_id, current.commune_code, current.document_type)
    doc = lifecycle.withdraw(container.pki, document_id, body.reason, access.principal.actor)
    return DocumentOut.of(doc, container.settings.base_url)


@router.post("/documents/{document_id}/supersede", response_model=DocumentOut,
             summary="Mark a document as replaced by another")
def supersede(document_id: str, body: SupersedeIn, container: ContainerDep, session: SessionDep,
              access: CanSupersede) -> DocumentOut:
    for named in (document_id, body.by):  # the replacement too: its id must not be confirmed either
        current = lifecycle.get_document(session, named)
        access.check_document(session, named, current.commune_code, current.document_type)
    doc = lifecycle.supersede(container.pki, document_id, body.by, body.reason, access.principal.actor)
    return DocumentOut.of(doc, container.settings.base_url)


@router.put("/credentials/{credential_id}/images/{kind}", status_code=204, response_class=Response,
            responses=error_responses(415),
            summary="Enrol the handwritten-signature (kind=signature) or seal (kind=seal) image, a transparent PNG",
            openapi_extra={"requestBody": {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                                           "required": True}})
async def enroll_image(credential_id: str, kind: str, request: Request, container: ContainerDep,
                       principal: Operator) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "image/png":
        raise UnsupportedMediaType(f"send the image as image/png, not {content_type or 'nothing'}")
    png = await request.body()
    await run_in_threadpool(lifecycle.enroll_image, container.pki, credential_id, kind, png, principal.actor)
    return Response(status_code=204)
