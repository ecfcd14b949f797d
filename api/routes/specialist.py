"""The specialist's own page ``/me``: sign in with her CCCD number or username, PIN and code; enrol
her authenticator with the one-time code an operator handed her (``/me/enrol``: she chooses her PIN,
sees the key as QR code, text and ``otpauth:`` link, confirms with a first code); change the PIN;
see the certificate and every document signed with it; approve or reject the signing requests her
civil-registration software submitted; choose among her credentials when she holds several.

Server-rendered (Jinja2), no JavaScript, Vietnamese first (``?lang=en``). Presentation only: the
factors are checked by ``signing.activation.factors``/``enrolment``, sessions kept server-side by
``signing.activation.sessions``, approvals carried out by ``sign_requests.approve``. Every form posts a
CSRF token, the sign-in and enrolment forms too (``api.specialist_session``). A failed sign-in
answers the same, word for word and status, whether the identifier exists or not.
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
from signing.activation import enrolment, factors, requests, sessions as server_sessions, throttle
from signing.activation.models import ActivationState, RequestStatus
from signing.registry import lifecycle

from .. import specialist_session as sessions
from ..container import Container
from ..deps import ContainerDep
from ..errors import status_for
from ..ratelimit import client_address
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
IMAGE_HEADERS = PAGE_HEADERS  # never stored: a shared counter PC's cache would show a citizen's pages after logout
PDF_HEADERS = {**PAGE_HEADERS, "Content-Security-Policy": "sandbox; default-src 'none'"}
Lang = Annotated[str, Query(pattern="^(vi|en)$")]
MESSAGES = {"rejected", "approved"}
SIGNED_OUT_MESSAGES = {"enrolled", "pin_changed", "signed_out"}


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
    if isinstance(exc, throttle.Throttled):
        return t["e_throttled"].format(seconds=int(exc.retry_after) + 1)
    if isinstance(exc, factors.CredentialLocked):
        return t["e_locked"]
    if isinstance(exc, NotSeen):
        return t["e_not_seen"] if exc.details.get("reason") == "unconfirmed" else t["e_changed"]
    if isinstance(exc, enrolment.UnknownEnrolmentCode):
        return t["e_code"]
    if isinstance(exc, factors.InvalidActivationData):
        return t["e_login"]
    return t["e_generic"].format(message=exc.message)


def _address(request: Request, container: Container) -> str:
    return client_address(request, tuple(container.settings.trusted_proxies))[:64]


def _signed_in(request: Request, container: Container) -> server_sessions.SignedIn | None:
    return server_sessions.read(container.pki, request.cookies.get(sessions.COOKIE))


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
    return {"name": name, "credential_id": credential_id, "certificate": certificate, "pending": pending,
            "documents": documents, "total": total,
            "can_change_pin": state == ActivationState.ACTIVE,
            "activation_text": t.get(f"act_{state}", state)}


def _home(container: Container, request: Request, signed_in: server_sessions.SignedIn, lang: str, status: int = 200,
          message: str | None = None, tone: str = "bad") -> HTMLResponse:
    cookie = request.cookies.get(sessions.COOKIE) or ""
    values = _home_values(container, signed_in.credential_id, lang)
    choices = [c for c in server_sessions.choices(container.pki, signed_in)
               if c.credential_id != signed_in.credential_id]
    return _render("home.html", lang, status, message=message, tone=tone, choices=choices,
                   csrf=sessions.csrf_token(container.settings, cookie), **values)


def _request_page(container: Container, request: Request, signed_in: server_sessions.SignedIn, request_id: str,
                  lang: str, status: int = 200, message: str | None = None) -> HTMLResponse:
    """The request's page; when it is no longer hers to decide (decided, expired, unknown), /me with the message."""
    try:
        values = _request_values(container, signed_in.credential_id, request_id, lang)
    except requests.UnknownSigningRequest:
        return _home(container, request, signed_in, lang, status if message else 404, message)
    cookie = request.cookies.get(sessions.COOKIE) or ""
    return _render("request.html", lang, status, message=message, csrf=sessions.csrf_token(container.settings, cookie),
                   switch_href=f"/me/requests/{request_id}?lang={'en' if lang == 'vi' else 'vi'}", **values)


def _signed_out(request: Request, container: Container, template: str, lang: str, status: int = 200, *,
                message: str | None = None, tone: str = "bad", **values: Any) -> HTMLResponse:
    """A page before sign-in (sign-in, enrolment): its forms carry the pre-session CSRF token."""
    value = sessions.pre_value(request)
    response = _render(template, lang, status, message=message, tone=tone,
                       csrf=sessions.pre_token(container.settings, value), **values)
    sessions.set_pre(response, request, container.settings, value)
    return response


def _back(lang: str, message: str, **extra: int) -> RedirectResponse:
    query = "&".join([f"lang={lang}", f"m={message}", *(f"{k}={v}" for k, v in extra.items())])
    return RedirectResponse(f"/me?{query}", status_code=303, headers=PAGE_HEADERS)


@router.get("", response_class=HTMLResponse)
def page(request: Request, container: ContainerDep, lang: Lang = "vi", m: str | None = None,
         signed: int = Query(default=0, ge=0, le=1000), failed: int = Query(default=0, ge=0, le=1000)) -> Response:
    signed_in = _signed_in(request, container)
    if signed_in is None:
        message = _strings[lang][m] if m in SIGNED_OUT_MESSAGES else None
        return _signed_out(request, container, "login.html", lang, message=message, tone="ok", identifier="")
    message = _strings[lang][m].format(signed=signed, failed=failed) if m in MESSAGES else None
    return _home(container, request, signed_in, lang, message=message, tone="ok")


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, container: ContainerDep, request_id: str, lang: Lang = "vi") -> Response:
    """One pending request: every page of every document, the stamp's place, and the approval form."""
    signed_in = _signed_in(request, container)
    if signed_in is None:
        return _signed_out(request, container, "login.html", lang, identifier="")
    return _request_page(container, request, signed_in, request_id, lang)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, container: ContainerDep, identifier: Annotated[str, Form(max_length=40)],
                pin: Annotated[str, Form(max_length=64)], otp: Annotated[str, Form(max_length=10)] = "",
                csrf: Annotated[str, Form(max_length=100)] = "", lang: Lang = "vi") -> Response:
    identifier = identifier.strip()
    if not sessions.pre_ok(container.settings, request, csrf):
        return _signed_out(request, container, "login.html", lang, 403, message=_strings[lang]["e_session"],
                           identifier=identifier)
    try:
        done = await run_in_threadpool(factors.sign_in, container.pki, identifier, pin, otp.strip() or None,
                                       address=_address(request, container))
    except KysoError as exc:
        status = status_for(exc)
        return _signed_out(request, container, "login.html", lang, status if status < 500 else 400,
                           message=_error_text(lang, exc), identifier=identifier)
    response = RedirectResponse(f"/me?lang={lang}", status_code=303, headers=PAGE_HEADERS)
    sessions.set_session(response, request, container.settings, done.token)
    return response


@router.get("/enrol", response_class=HTMLResponse)
def enrol_page(request: Request, container: ContainerDep, lang: Lang = "vi") -> Response:
    return _signed_out(request, container, "enrol.html", lang)


@router.post("/enrol", response_class=HTMLResponse)
async def enrol_redeem(request: Request, container: ContainerDep, code: Annotated[str, Form(max_length=40)],
                       pin: Annotated[str, Form(max_length=64)], pin_again: Annotated[str, Form(max_length=64)],
                       csrf: Annotated[str, Form(max_length=100)] = "", lang: Lang = "vi") -> Response:
    if not sessions.pre_ok(container.settings, request, csrf):
        return _signed_out(request, container, "enrol.html", lang, 403, message=_strings[lang]["e_session"])
    try:
        started = await run_in_threadpool(enrolment.redeem, container.pki, code, pin, pin_again,
                                          address=_address(request, container))
    except KysoError as exc:
        status = status_for(exc)
        return _signed_out(request, container, "enrol.html", lang, status if status < 500 else 400,
                           message=_error_text(lang, exc))
    return _signed_out(request, container, "enrol_key.html", lang, code=code.strip(), uri=started.uri,
                       qr=base64.b64encode(started.png).decode(), text_key=started.text_key)


@router.post("/enrol/confirm", response_class=HTMLResponse)
async def enrol_confirm(request: Request, container: ContainerDep, code: Annotated[str, Form(max_length=40)],
                        otp: Annotated[str, Form(max_length=10)], csrf: Annotated[str, Form(max_length=100)] = "",
                        lang: Lang = "vi") -> Response:
    if not sessions.pre_ok(container.settings, request, csrf):
        return _signed_out(request, container, "enrol.html", lang, 403, message=_strings[lang]["e_session"])
    try:
        await run_in_threadpool(enrolment.finish, container.pki, code, otp, address=_address(request, container))
    except enrolment.UnknownEnrolmentCode as exc:
        return _signed_out(request, container, "enrol.html", lang, status_for(exc), message=_error_text(lang, exc))
    except KysoError as exc:  # a wrong first code: the same key again, to type the next code
        status = status_for(exc)
        return _signed_out(request, container, "enrol_key.html", lang, status if status < 500 else 400,
                           message=_error_text(lang, exc), code=code.strip(), uri=None, qr=None, text_key=None)
    return RedirectResponse(f"/me?lang={lang}&m=enrolled", status_code=303, headers=PAGE_HEADERS)


def _guard(request: Request, container: Container, csrf: str | None) -> server_sessions.SignedIn | None:
    """The live session when the cookie and the form's CSRF token are good, else None."""
    cookie = request.cookies.get(sessions.COOKIE)
    if not sessions.csrf_ok(container.settings, cookie, csrf):
        return None
    return server_sessions.read(container.pki, cookie)


def _expired(request: Request, container: Container, lang: str) -> HTMLResponse:
    return _signed_out(request, container, "login.html", lang, 401, message=_strings[lang]["e_session"],
                       identifier="")


@router.post("/logout")
def logout(request: Request, container: ContainerDep, csrf: Annotated[str, Form(max_length=100)] = "",
           lang: Lang = "vi") -> Response:
    response = RedirectResponse(f"/me?lang={lang}&m=signed_out", status_code=303, headers=PAGE_HEADERS)
    if _guard(request, container, csrf) is not None:
        server_sessions.revoke(container.pki, request.cookies.get(sessions.COOKIE), "logout")
        sessions.clear_session(response, request, container.settings)
    return response


@router.post("/choose")
def choose(request: Request, container: ContainerDep, credential_id: Annotated[str, Form(max_length=40)],
           csrf: Annotated[str, Form(max_length=100)] = "", lang: Lang = "vi") -> Response:
    """Look at another of her credentials (same person) in the same session."""
    if _guard(request, container, csrf) is None:
        return _expired(request, container, lang)
    server_sessions.switch(container.pki, request.cookies.get(sessions.COOKIE) or "", credential_id.strip())
    return RedirectResponse(f"/me?lang={lang}", status_code=303, headers=PAGE_HEADERS)


async def _act(request: Request, container: Container, csrf: str, lang: str, action: Any, success: str,
               request_id: str | None = None, **counts: Any) -> Response:
    """Carry out ``action`` for the signed-in specialist; an error is shown on the page the form was on (the
    request's own page for ``request_id``, else /me)."""
    signed_in = _guard(request, container, csrf)
    if signed_in is None:
        return _expired(request, container, lang)
    try:
        result = await run_in_threadpool(action, signed_in.credential_id)
    except KysoError as exc:
        status = status_for(exc)
        status = status if status < 500 else 400
        if request_id is not None:
            return await run_in_threadpool(_request_page, container, request, signed_in, request_id, lang, status,
                                           _error_text(lang, exc))
        return await run_in_threadpool(_home, container, request, signed_in, lang, status, _error_text(lang, exc))
    extra = counts.get("of", lambda _: {})(result)
    return _back(lang, success, **extra)


@router.post("/pin")
async def change_pin(request: Request, container: ContainerDep, old: Annotated[str, Form(max_length=64)],
                     new: Annotated[str, Form(max_length=64)], csrf: Annotated[str, Form(max_length=100)] = "",
                     lang: Lang = "vi") -> Response:
    """A new PIN ends every session of the credential, this one too: she signs in again with it."""
    address = _address(request, container)
    response = await _act(request, container, csrf, lang,
                          lambda cred: factors.change_pin(container.pki, cred, old, new, address=address),
                          "pin_changed")
    if isinstance(response, RedirectResponse):
        sessions.clear_session(response, request, container.settings)
    return response


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

    address = _address(request, container)

    def act(cred: str) -> sign_requests.SigningRequestOut:
        shown = _check_seen(container, request_id, cred, seen, documents)
        return sign_requests.approve(container, request_id, cred, pin, otp.strip(), seen=shown, address=address)

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
    signed_in = _signed_in(request, container)
    if signed_in is None:
        return Response("sign in at /me", status_code=401, media_type="text/plain", headers=PAGE_HEADERS)
    try:
        return _her_document(container, signed_in.credential_id, request_id, position)
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
