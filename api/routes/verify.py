"""Verification for systems: ``POST /api/v1/verify`` with a PDF returns a report per signature.

Open to any caller (a citizen's upload goes through it too), so it is rate-limited per address
instead of authenticated. The report comes as JSON (default), HTML (``Accept: text/html`` or
``?format=html``) or a PDF sealed by kyso's organisation seal (``Accept: application/pdf`` or
``?format=pdf``); ``?lang=en`` switches the human-readable parts to English.
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from signing.create import report_pdf
from signing.verify.report import VerificationReport

from ..deps import ContainerDep
from ..errors import UnsupportedMediaType
from ..ratelimit import limit_verification
from ..schemas import error_responses
from ..uploads import checked_pdf, read_pdf
from ..verify_gate import extract_signed_revision, verify_gate

router = APIRouter(prefix="/api/v1", tags=["verification"], responses=error_responses(400, 413, 415, 422, 429, 503))
Format = Literal["json", "html", "pdf"]


def _format(request: Request, explicit: Format | None) -> Format:
    if explicit:
        return explicit
    accept = request.headers.get("accept", "")
    if "application/pdf" in accept:
        return "pdf"
    if "text/html" in accept and "application/json" not in accept:
        return "html"
    return "json"


@router.post(
    "/verify", summary="Verify every signature in a PDF (multipart `file`, or the PDF itself as application/pdf)",
    dependencies=[Depends(limit_verification)], response_model=VerificationReport,
    openapi_extra={"requestBody": {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
    responses={200: {"content": {"application/json": {}, "text/html": {}, "application/pdf": {}},
                     "description": "The report: JSON, HTML, or a sealed PDF"}},
)
async def verify(request: Request, container: ContainerDep,
                 file: Annotated[UploadFile | None,
                                 File(description="The PDF to check (or send the PDF itself as "
                                                  "the body with Content-Type: application/pdf)")] = None,
                 # the public ?format= parameter: FastAPI names it after the argument
                 format: Annotated[Format | None,  # noqa: A002
                                   Query(description="json, html or pdf; default from Accept")] = None,
                 lang: Annotated[Literal["vi", "en"],
                                 Query(description="Language of the sentences")] = "vi") -> Response:
    pdf = await _uploaded(request, container.settings.max_pdf_bytes, file)
    report = await verify_gate(request).run(container.verifier.verify, pdf)
    chosen = _format(request, format)
    if chosen == "html":
        return HTMLResponse(report_pdf.to_html(report, lang))
    if chosen == "pdf":
        host = request.client.host if request.client else "unknown"
        sealed = await run_in_threadpool(report_pdf.sealed_pdf, container.signing, report, lang,
                                         actor=f"verify:{host}")
        return Response(sealed, media_type="application/pdf",
                        headers={"Content-Disposition":
                                 f'attachment; filename="verification-{report.sha256[:12]}.pdf"'})
    return JSONResponse(report.as_dict())


async def _uploaded(request: Request, limit: int, file: UploadFile | None) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if file is not None:
        return await read_pdf(file, limit)
    if content_type == "application/pdf":
        return await run_in_threadpool(checked_pdf, await request.body(), limit, "the body")
    raise UnsupportedMediaType(f"send the PDF as multipart/form-data with a part named 'file', or as the body "
                               f"with Content-Type: application/pdf (this request was {content_type or 'empty'})")


@router.post(
    "/verify/signed-revision",
    summary="The part of a PDF its first signature covers: what the signer signed, before any later change",
    dependencies=[Depends(limit_verification)],
    openapi_extra={"requestBody": {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
    responses={200: {"content": {"application/pdf": {}}, "description": "The signed revision, a complete PDF"}},
)
async def signed_revision(request: Request, container: ContainerDep,
                          file: Annotated[UploadFile | None, File(description="The signed PDF")] = None) -> Response:
    """When a report says the file was changed after signing, this returns what was signed (the byte
    prefix that is the signed revision), for any signed PDF; a registered kyso document's versions are
    also at ``GET /api/v1/documents/{id}/file?version=N``."""
    pdf = await _uploaded(request, container.settings.max_pdf_bytes, file)
    prefix, field, revision = await verify_gate(request).run(extract_signed_revision(container.settings), pdf)
    return Response(prefix, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="signed-revision-{revision}.pdf"',
                             "X-Signature-Field": _header_safe(field), "X-Signed-Revision": str(revision)})


def _header_safe(value: str) -> str:
    """A field name from the file, as one short ASCII line (it is the file's text, not kyso's)."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in value)[:80]
