"""The specialist's own page ``/me``: sign in with PIN + code, scan the authenticator's QR code,
change the PIN, see the certificate and every document signed with it, and approve or reject the
signing requests their civil-registration software submitted.

Server-rendered (Jinja2), no JavaScript, Vietnamese first (``?lang=en``). Presentation only: the
factors are checked by ``signing.activation.factors``, approvals carried out by ``sign_requests.approve``.
Every form posts a CSRF token; the session cookie is described in ``api.specialist_session``.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any

import jinja2
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from core import clock
from core.db import transaction
from core.errors import InvalidInput, KysoError, NotFound
from pki.models import CertificateStatus
from pki.store import get_credential
from policies import units
from signing.activation import factors, requests
from signing.activation.models import ActivationState, RequestStatus
from signing.registry import lifecycle

from .. import specialist_session as sessions
from ..container import Container
from ..deps import ContainerDep
from ..errors import status_for
from ..schemas_signing import SignMetadata
from . import sign_requests
from .citizen import HEADERS, KIND_EN, TEMPLATES as CITIZEN_TEMPLATES, VN

if TYPE_CHECKING:
    from signing.create.service import SignRequest

router = APIRouter(prefix="/me", tags=["specialist"], include_in_schema=False)
HERE = FilePath(__file__).resolve().parent.parent / "templates" / "specialist"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader([HERE, CITIZEN_TEMPLATES]), autoescape=True,
                          trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
_strings: dict[str, dict[str, str]] = json.loads((HERE / "strings.json").read_text("utf-8"))
PAGE_HEADERS = {**HEADERS, "Cache-Control": "no-store"}
IMAGE_HEADERS = {**PAGE_HEADERS, "Cache-Control": "private, max-age=600"}  # bytes of a request never change
PDF_HEADERS = {**PAGE_HEADERS, "Content-Security-Policy": "sandbox; default-src 'none'"}
Lang = Annotated[str, Query(pattern="^(vi|en)$")]
MESSAGES = {"enrolled", "pin_changed", "rejected", "approved"}


class NotSeen(InvalidInput):
    """An approval without the confirmation that every page was seen, or for other documents than those shown."""

    code = "documents_not_seen"


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return clock.aware(value).astimezone(VN).strftime("%H:%M %d/%m/%Y")


def _render(template: str, lang: str, status: int = 200, *, message: str | None = None, tone: str = "bad",
            switch_href: str | None = None, **values: Any) -> HTMLResponse:
    switch_href = switch_href or f"/me?lang={'en' if lang == 'vi' else 'vi'}"
    html = _env.get_template(template).render(lang=lang, t=_strings[lang], switch_href=switch_href, message=message,
                                              message_tone=tone, **values)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _error_text(lang: str, exc: KysoError) -> str:
    t = _strings[lang]
    if isinstance(exc, factors.CredentialLocked):
        return t["e_locked"]
    if isinstance(exc, NotSeen):
        return t["e_not_seen"] if exc.details.get("reason") == "unconfirmed" else t["e_changed"]
    if isinstance(exc, factors.InvalidActivationData):
        left = exc.details.get("attempts_left")
        return t["e_login"] + (" " + t["e_left"].format(left=left) if left is not None else "")
    return t["e_generic"].format(message=exc.message)


def _signed_in(request: Request, container: Container) -> str | None:
    return sessions.read(container.settings, request.cookies.get(sessions.COOKIE))


def _unit_name(session: Session, code: str | None, lang: str) -> str:
    """The commune's (or province's) name in the catalogue today, Vietnamese or English; the code if unknown."""
    if not code:
        return ""
    try:
        unit = units.view(session, code, clock.now().astimezone(VN).date())
    except NotFound:
        return code
    if lang == "vi":
        return f"{unit.full_name}, {unit.province_name}" if unit.province_name else unit.full_name
    return f"{unit.name_en} {KIND_EN.get(unit.kind, '')}".strip()


def _type_title(container: Container, name: str, lang: str) -> str:
    try:
        doc_type = container.signing.policy.get(name)
    except KysoError:
        return name
    return str(getattr(doc_type, f"title_{lang}") or name)


def _pending_item(container: Container, session: Session, lang: str, request_id: str, item: Any) -> dict[str, Any]:
    """What the card shows of one pending document, read in the caller's transaction; ``_with_preview`` then adds
    the pages (rendered outside it: the rendering opens transactions of its own)."""
    meta = json.loads(item.metadata_json)
    return {"index": item.position, "filename": item.filename or "", "sha256": item.sha256,
            "title": _type_title(container, meta.get("document_type", ""), lang),
            "dossier": meta.get("dossier_number") or "",
            "commune": _unit_name(session, meta.get("commune_code"), lang),
            "request": SignMetadata.model_validate(meta).to_request(item.pdf), "request_id": request_id}


def _with_preview(container: Container, item: dict[str, Any]) -> dict[str, Any]:
    request_id, position = item.pop("request_id"), item["index"]
    preview = container.previews.of((request_id, position), item.pop("request"))
    base = f"/me/requests/{request_id}/documents/{position}"
    pages = [{"number": n + 1, "small": f"{base}/pages/{n + 1}.png", "large": f"{base}/pages/{n + 1}.png?size=large",
              "width": page.width if page else 0, "height": page.height if page else 0, "ok": page is not None,
              "stamp": n == preview.stamp_page} for n, page in enumerate(preview.pages)]
    return {**item, "page_count": preview.page_count, "pages": pages, "hidden_pages": preview.hidden_pages,
            "stamp_shown": preview.stamp_page is not None, "problem": preview.problem, "pdf": f"{base}.pdf"}


def _request_summary(container: Container, session: Session, lang: str, row: Any) -> dict[str, Any]:
    """A pending request as /me lists it (nothing rendered: its page, ``/me/requests/{id}``, shows the pages)."""
    items = [_pending_item(container, session, lang, row.id, item) for item in requests.items(session, row.id)]
    return {"id": row.id, "client": row.client.removeprefix("token:"), "created": _when(row.created_at),
            "note": row.note, "items": items, "documents": ",".join(i["sha256"] for i in items)}


def _request_values(container: Container, credential_id: str, request_id: str, lang: str) -> dict[str, Any]:
    """One of HER pending requests with every document's pages (rendered outside the transaction: the
    rendering opens transactions of its own); anyone else's, or one no longer pending: not found."""
    with transaction(container.sessions) as session:
        row = requests.get(session, request_id, credential_id=credential_id)
        if row.status != RequestStatus.PENDING:
            raise requests.UnknownSigningRequest(f"signing request {request_id} is {row.status}, not waiting")
        req = _request_summary(container, session, lang, row)
    req["items"] = [_with_preview(container, item) for item in req["items"]]
    return {"req": req}


def _home_values(container: Container, credential_id: str, lang: str) -> dict[str, Any]:
    t = _strings[lang]
    with transaction(container.sessions) as session:
        credential = get_credential(session, credential_id)
        cert = credential.certificate
        state = factors.status_in(session, credential_id).state
        certificate = None
        if cert is not None:
            expired = clock.aware(cert.not_after) <= clock.now()
            certificate = {"serial": cert.serial, "not_before": _when(cert.not_before),
                           "not_after": _when(cert.not_after),
                           "unit": _unit_name(session, cert.commune_code or cert.province_code, lang),
                           "status_text": t["cert_expired"] if expired and
                           cert.status == CertificateStatus.VALID else t.get(f"cert_{cert.status}", cert.status)}
        pending = [_request_summary(container, session, lang, row)
                   for row in requests.pending_for(session, credential_id)]
        docs, total = lifecycle.list_documents(session, lifecycle.DocumentFilter(credential_id=credential_id, limit=50))
        documents = [{"id": d.id, "title": _type_title(container, d.document_type, lang), "dossier": d.dossier_number
                      or "", "signed_at": _when(d.signed_at), "status": t.get(f"doc_{d.status}", d.status)}
                     for d in docs]
        name = cert.common_name if cert else credential_id
    enrol_qr = None
    if state == ActivationState.PENDING:
        enrol_qr = base64.b64encode(factors.enrollment_qr(container.pki, credential_id).png).decode()
    return {"name": name, "credential_id": credential_id, "certificate": certificate, "pending": pending,
            "documents": documents, "total": total, "enrol_qr": enrol_qr,
            "can_change_pin": state == ActivationState.ACTIVE,
            "activation_text": t.get(f"act_{state}", state)}


def _home(container: Container, request: Request, credential_id: str, lang: str, status: int = 200,
          message: str | None = None, tone: str = "bad") -> HTMLResponse:
    cookie = request.cookies.get(sessions.COOKIE) or ""
    values = _home_values(container, credential_id, lang)
    return _render("home.html", lang, status, message=message, tone=tone,
                   csrf=sessions.csrf_token(container.settings, cookie), **values)


def _request_page(container: Container, request: Request, credential_id: str, request_id: str, lang: str,
                  status: int = 200, message: str | None = None) -> HTMLResponse:
    """The request's page; when it is no longer hers to decide (decided, expired, unknown), /me with the message."""
    try:
        values = _request_values(container, credential_id, request_id, lang)
    except requests.UnknownSigningRequest:
        return _home(container, request, credential_id, lang, status if message else 404, message)
    cookie = request.cookies.get(sessions.COOKIE) or ""
    return _render("request.html", lang, status, message=message, csrf=sessions.csrf_token(container.settings, cookie),
                   switch_href=f"/me/requests/{request_id}?lang={'en' if lang == 'vi' else 'vi'}", **values)


def _back(lang: str, message: str, **extra: int) -> RedirectResponse:
    query = "&".join([f"lang={lang}", f"m={message}", *(f"{k}={v}" for k, v in extra.items())])
    return RedirectResponse(f"/me?{query}", status_code=303, headers=PAGE_HEADERS)


@router.get("", response_class=HTMLResponse)
def page(request: Request, container: ContainerDep, lang: Lang = "vi", m: str | None = None,
         signed: int = Query(default=0, ge=0, le=1000), failed: int = Query(default=0, ge=0, le=1000)) -> Response:
    credential_id = _signed_in(request, container)
    if credential_id is None:
        return _render("login.html", lang, credential_id="")
    message = _strings[lang][m].format(signed=signed, failed=failed) if m in MESSAGES else None
    return _home(container, request, credential_id, lang, message=message, tone="ok")


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, container: ContainerDep, request_id: str, lang: Lang = "vi") -> Response:
    """One pending request: every page of every document, the stamp's place, and the approval form."""
    credential_id = _signed_in(request, container)
    if credential_id is None:
        return _render("login.html", lang, credential_id="")
    return _request_page(container, request, credential_id, request_id, lang)


@router.post("/login", response_class=HTMLResponse)
async def login(container: ContainerDep, credential_id: Annotated[str, Form(max_length=40)],
                pin: Annotated[str, Form(max_length=64)], otp: Annotated[str, Form(max_length=10)] = "",
                lang: Lang = "vi") -> Response:
    credential_id = credential_id.strip()
    try:
        await run_in_threadpool(factors.sign_in, container.pki, credential_id, pin, otp.strip() or None)
    except KysoError as exc:
        return _render("login.html", lang, status_for(exc) if status_for(exc) < 500 else 400,
                       message=_error_text(lang, exc), credential_id=credential_id)
    response = RedirectResponse(f"/me?lang={lang}", status_code=303, headers=PAGE_HEADERS)
    response.set_cookie(sessions.COOKIE, sessions.issue(container.settings, credential_id), max_age=sessions.LIFETIME,
                        httponly=True, samesite="strict", path="/me",
                        secure=container.settings.base_url.startswith("https://"))
    return response


def _guard(request: Request, container: Container, csrf: str | None) -> str | None:
    """The signed-in credential when the cookie and the form's CSRF token are good, else None."""
    cookie = request.cookies.get(sessions.COOKIE)
    credential_id = sessions.read(container.settings, cookie)
    if credential_id is None or not sessions.csrf_ok(container.settings, cookie, csrf):
        return None
    return credential_id


def _expired(lang: str) -> HTMLResponse:
    return _render("login.html", lang, 401, message=_strings[lang]["e_session"], credential_id="")


@router.post("/logout")
def logout(request: Request, container: ContainerDep, csrf: Annotated[str, Form(max_length=100)] = "",
           lang: Lang = "vi") -> Response:
    response = RedirectResponse(f"/me?lang={lang}", status_code=303, headers=PAGE_HEADERS)
    if _guard(request, container, csrf) is not None:
        response.delete_cookie(sessions.COOKIE, path="/me")
    return response


async def _act(request: Request, container: Container, csrf: str, lang: str, action: Any, success: str,
               request_id: str | None = None, **counts: Any) -> Response:
    """Carry out ``action`` for the signed-in specialist; an error is shown on the page the form was on (the
    request's own page for ``request_id``, else /me)."""
    credential_id = _guard(request, container, csrf)
    if credential_id is None:
        return _expired(lang)
    try:
        result = await run_in_threadpool(action, credential_id)
    except KysoError as exc:
        status = status_for(exc)
        status = status if status < 500 else 400
        if request_id is not None:
            return await run_in_threadpool(_request_page, container, request, credential_id, request_id, lang, status,
                                           _error_text(lang, exc))
        return await run_in_threadpool(_home, container, request, credential_id, lang, status, _error_text(lang, exc))
    extra = counts.get("of", lambda _: {})(result)
    return _back(lang, success, **extra)


@router.post("/enroll")
async def confirm_enrolment(request: Request, container: ContainerDep, code: Annotated[str, Form(max_length=10)],
                            csrf: Annotated[str, Form(max_length=100)] = "", lang: Lang = "vi") -> Response:
    return await _act(request, container, csrf, lang,
                      lambda cred: factors.confirm(container.pki, cred, code.strip()), "enrolled")


@router.post("/pin")
async def change_pin(request: Request, container: ContainerDep, old: Annotated[str, Form(max_length=64)],
                     new: Annotated[str, Form(max_length=64)], csrf: Annotated[str, Form(max_length=100)] = "",
                     lang: Lang = "vi") -> Response:
    return await _act(request, container, csrf, lang,
                      lambda cred: factors.change_pin(container.pki, cred, old, new), "pin_changed")


@router.post("/requests/{request_id}/approve")
async def approve(request: Request, container: ContainerDep, request_id: str,
                  pin: Annotated[str, Form(max_length=64)], otp: Annotated[str, Form(max_length=10)],
                  csrf: Annotated[str, Form(max_length=100)] = "", seen: Annotated[str, Form(max_length=3)] = "",
                  documents: Annotated[str, Form(max_length=65 * factors.MAX_HASHES_PER_SAD)] = "",
                  lang: Lang = "vi") -> Response:
    """``seen``: her confirmation that she has seen every page; ``documents``: the SHA-256 of each document the
    page showed her, in order. Both are checked before her PIN and code are: an approval of anything other
    than what she saw is refused, and the SAD is then bound to exactly these hashes (``sign_requests.approve``)."""
    def counts(out: sign_requests.SigningRequestOut) -> dict[str, int]:
        signed = sum(1 for i in out.items if i.status == "signed")
        return {"signed": signed, "failed": len(out.items) - signed}

    def act(cred: str) -> sign_requests.SigningRequestOut:
        shown = _check_seen(container, request_id, cred, seen, documents)
        return sign_requests.approve(container, request_id, cred, pin, otp.strip(), seen=shown)

    return await _act(request, container, csrf, lang, act, "approved", request_id, of=counts)


def _check_seen(container: Container, request_id: str, credential_id: str, seen: str, documents: str) -> list[str]:
    """The hashes of the documents she confirmed having seen, when they are exactly the request's, in order."""
    with transaction(container.sessions) as session:  # not read-only: reading a request may mark it expired
        row = requests.get(session, request_id, credential_id=credential_id)
        if row.status != RequestStatus.PENDING:
            raise requests.SigningRequestClosed(f"signing request {request_id} is {row.status}, not waiting")
        stored = [item.sha256 for item in requests.items(session, request_id)]
    if seen != "yes":
        raise NotSeen("confirm that you have seen every page of these documents", reason="unconfirmed")
    if [d.strip().lower() for d in documents.split(",") if d.strip()] != stored:
        raise NotSeen("the documents approved are not the ones this request holds", reason="changed")
    return stored


@router.post("/requests/{request_id}/reject")
async def reject(request: Request, container: ContainerDep, request_id: str,
                 reason: Annotated[str, Form(max_length=500)] = "", csrf: Annotated[str, Form(max_length=100)] = "",
                 lang: Lang = "vi") -> Response:
    return await _act(request, container, csrf, lang,
                      lambda cred: sign_requests.reject(container, request_id, cred, reason.strip() or None),
                      "rejected", request_id)


def _her_document(container: Container, credential_id: str, request_id: str, position: int) -> SignRequest:
    """One document of one of HER pending requests, as it would be signed; anyone else's: not found."""
    with transaction(container.sessions) as session:
        row = requests.get(session, request_id, credential_id=credential_id)
        found = [item for item in requests.items(session, row.id) if item.position == position]
        if row.status != RequestStatus.PENDING or not found:
            raise requests.UnknownSigningRequest(f"no pending document {position} in signing request {request_id}")
        return SignMetadata.model_validate_json(found[0].metadata_json).to_request(found[0].pdf)


def _owner_or_none(request: Request, container: Container, request_id: str, position: int) -> SignRequest | Response:
    credential_id = _signed_in(request, container)
    if credential_id is None:
        return Response("sign in at /me", status_code=401, media_type="text/plain", headers=PAGE_HEADERS)
    try:
        return _her_document(container, credential_id, request_id, position)
    except KysoError as exc:
        return Response(exc.message, status_code=status_for(exc), media_type="text/plain", headers=PAGE_HEADERS)


@router.get("/requests/{request_id}/documents/{position}/pages/{page}.png")
def page_image(request: Request, container: ContainerDep, request_id: str,
               position: Annotated[int, Path(ge=0, le=1000)], page: Annotated[int, Path(ge=1, le=100_000)],
               size: Annotated[str, Query(pattern="^(small|large)$")] = "small") -> Response:
    """One page of a document waiting for HER approval, as it will be signed (the stamp's place drawn in red)."""
    found = _owner_or_none(request, container, request_id, position)
    if isinstance(found, Response):
        return found
    preview = container.previews.of((request_id, position), found)
    image = preview.pages[page - 1] if page <= len(preview.pages) else None
    if image is None:
        return Response("no image of this page", status_code=404, media_type="text/plain", headers=PAGE_HEADERS)
    return Response(image.large if size == "large" else image.small, media_type="image/png", headers=IMAGE_HEADERS)


@router.get("/requests/{request_id}/documents/{position}.pdf")
def document_file(request: Request, container: ContainerDep, request_id: str,
                  position: Annotated[int, Path(ge=0, le=1000)]) -> Response:
    """The document exactly as submitted (the bytes whose SHA-256 her approval authorizes)."""
    found = _owner_or_none(request, container, request_id, position)
    if isinstance(found, Response):
        return found
    return Response(found.pdf, media_type="application/pdf",
                    headers={**PDF_HEADERS, "Content-Disposition": f'inline; filename="{request_id}-{position}.pdf"'})
