"""The citizen verification page ``/v/{document_id}``: what a QR code on a kyso-signed paper opens.

Server-rendered (Jinja2), readable without JavaScript, Vietnamese by default (``?lang=en``). It
shows the registry's answer at a glance, lets the citizen upload the PDF they received (a plain
multipart form), and ships a small ES5 script plus a service worker that check the offline seal
carried in the URL fragment, online or not. Everything here is presentation: the registry, the
verifier and the seal keys are read through their own modules.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2
from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from core.db import transaction
from core.errors import InvalidInput, KysoError, NotFound
from pki import store
from pki.models import Certificate, CertificateStatus
from pki.transparency import lookup as transparency
from policies import units
from policies.documents import DocumentType
from signing.create import offline_seal
from signing.errors import UnknownDocument
from signing.registry import lifecycle
from signing.registry.models import DocumentStatus, SignedDocument
from signing.verify.indications import Indication
from signing.verify.report import VerificationReport
from signing.verify.report_text import quoted

from ..container import Container
from ..deps import ContainerDep
from ..errors import retry_after, status_for
from ..ratelimit import limit_verification
from ..uploads import read_pdf
from ..verify_gate import extract_signed_revision, verify_gate

log = logging.getLogger("kyso.citizen")
router = APIRouter(tags=["citizen"], include_in_schema=False)

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates" / "citizen"
STATIC = HERE / "static" / "citizen"
VN = dt.timezone(dt.timedelta(hours=7), "ICT")  # Vietnam has no daylight saving time
ID_RE = re.compile(r"^[2-9A-HJ-NP-Z]{12}$")  # signing/create/service.py ID_ALPHABET: no 0, 1, I, O
SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2013\u2014._\u00b7/]+")  # how people copy the printed RZ7P-EK2V-V2LF
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}
PAGE_HEADERS = {**HEADERS, "Cache-Control": "no-cache"}  # statuses change: always revalidate
STRONG_REVOCATION = {"keyCompromise", "cACompromise", "aACompromise"}
KIND_EN = {"Phường": "Ward", "Xã": "Commune", "Đặc khu": "Special Zone", "Thị trấn": "Town"}

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                          lstrip_blocks=True, undefined=jinja2.StrictUndefined)
_strings: dict[str, dict[str, str]] = json.loads((TEMPLATES / "strings.json").read_text("utf-8"))


# -- what the page shows ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class Verdict:
    """A coloured box: ``tone`` ok / bad / warn, a short headline, what it means, what to do."""

    tone: str
    key: str
    headline: str
    sentence: str
    todo: str = ""
    link: str | None = None
    link_text: str = ""


@dataclass(frozen=True)
class LogLine:
    """One plain line under the verdict about the public log, said only after kyso verified the proof."""

    key: str  # logged | pending | unconfirmed | withdrawn | superseded | change_pending
    text: str
    proof_href: str | None = None


@dataclass(frozen=True)
class DocumentPage:
    document_id: str
    status: Verdict
    facts: list[Fact]
    seal_facts: list[Fact]
    commune_code: str
    commune_name: str
    contact: units.Contact | None
    log: tuple[LogLine, ...] = ()


def _lang(value: str | None) -> str:
    return "en" if (value or "").lower().startswith("en") else "vi"


def _t(lang: str, key: str, **values: Any) -> str:
    return _strings[lang][key].format(**values)


def _when(value: dt.datetime, lang: str, *, time: bool = True) -> str:
    local = value.astimezone(VN) if value.tzinfo else value.replace(tzinfo=dt.UTC).astimezone(VN)
    return _t(lang, "datetime" if time else "date", d=local.strftime("%d/%m/%Y"), t=local.strftime("%H:%M"))


def normalize_id(raw: str) -> str:
    """The canonical document id, or ``UnknownDocument`` for anything that cannot be one.

    Accepts what a citizen types or pastes: the printed groups (``rz7p-ek2v v2lf``), any case, or the
    whole address the QR code holds (``https://…/v/RZ7P…#seal``)."""
    text = unicodedata.normalize("NFKC", raw).strip().split("#", 1)[0].split("?", 1)[0]
    if "/v/" in text:
        text = text.rsplit("/v/", 1)[1]
    candidate = SEPARATORS.sub("", text).upper()
    if not ID_RE.match(candidate):
        raise UnknownDocument("malformed document id", code="malformed_document_id")
    return candidate


def grouped(document_id: str) -> str:
    """The id as the stamp prints it under the QR code: ``RZ7PEK2VV2LF`` → ``RZ7P-EK2V-V2LF``."""
    return "-".join(document_id[i:i + 4] for i in range(0, len(document_id), 4))


_env.filters["grouped"] = grouped


def mask(value: str) -> str:
    """Partly hide a personal value: 'Nguyễn Văn An' → 'Nguyễn V** A*', '001190000001' → '*********001'."""
    words = unicodedata.normalize("NFC", value).split()
    if len(words) > 1:
        return " ".join([words[0], *(w[0] + "*" * (len(w) - 1) for w in words[1:])])
    if not words:
        return ""
    word = words[0]
    if word.isdigit() and len(word) > 4:
        return "*" * (len(word) - 3) + word[-3:]
    return word[0] + "*" * (len(word) - 1)


def _seal_facts(token: str | None, doc_type: DocumentType | None, lang: str) -> list[Fact]:
    """The fields the policy lets the page show, from the stored seal token; masked where the policy says."""
    specs = doc_type.seal_fields if doc_type else ()
    if not token or not specs:
        return []
    try:
        sealed = offline_seal.parse(token).facts
    except KysoError:
        log.warning("the stored offline seal of a document could not be decoded")
        return []
    facts = []
    for spec in specs:
        value = sealed.field(spec.name)
        if value:
            facts.append(Fact(getattr(spec, f"label_{lang}"), mask(value) if spec.mask else value))
    return facts


def _signer(session: Session, serial: str) -> tuple[str | None, Certificate | None]:
    """The signer's title (from the certificate's subject) and certificate row, for the revocation check."""
    try:
        row = store.get_certificate(session, serial)
    except KysoError:
        return None, None
    titles = x509.load_der_x509_certificate(row.der).subject.get_attributes_for_oid(NameOID.TITLE)
    return (str(titles[0].value) if titles else None), row


def _status(doc: SignedDocument, cert_row: Certificate | None, commune: str, lang: str) -> Verdict:
    changed = _when(doc.status_changed_at, lang, time=False) if doc.status_changed_at else "?"
    if doc.status == DocumentStatus.WITHDRAWN:
        return Verdict("bad", "withdrawn", _t(lang, "withdrawn_head"), _t(lang, "withdrawn", date=changed),
                       _t(lang, "withdrawn_todo", commune=commune))
    if doc.status == DocumentStatus.SUPERSEDED:
        return Verdict("warn", "superseded", _t(lang, "superseded_head"), _t(lang, "superseded", date=changed),
                       _t(lang, "superseded_todo", commune=commune, new=grouped(doc.superseded_by or "?")),
                       link=f"/v/{doc.superseded_by}" if doc.superseded_by else None,
                       link_text=_t(lang, "superseded_link", new=grouped(doc.superseded_by or "")))
    if doc.status != DocumentStatus.VALID:
        return Verdict("bad", "unknown", _t(lang, "unknown_head"), _t(lang, "unknown_status"),
                       _t(lang, "contact", commune=commune))
    if cert_row is not None and cert_row.status == CertificateStatus.REVOKED and cert_row.revoked_at is not None:
        signed_at, revoked_at = doc.signed_at, cert_row.revoked_at
        if revoked_at.tzinfo is None:
            revoked_at = revoked_at.replace(tzinfo=dt.UTC)
        if signed_at.tzinfo is None:
            signed_at = signed_at.replace(tzinfo=dt.UTC)
        if revoked_at <= signed_at or cert_row.revocation_reason in STRONG_REVOCATION:
            return Verdict("bad", "revoked", _t(lang, "revoked_head"),
                           _t(lang, "revoked", date=_when(revoked_at, lang, time=False)),
                           _t(lang, "withdrawn_todo", commune=commune))
    return Verdict("ok", "valid", _t(lang, "valid_head"), _t(lang, "valid", commune=commune), _t(lang, "valid_todo"))


def _english(name_en: str, kind: str) -> str:
    return f"{name_en} {KIND_EN.get(kind, '')}".strip()


def document_page(container: Container, document_id: str, lang: str) -> DocumentPage:
    """Everything the page shows about one registered document (runs in a worker thread). Read from the
    replica when there is one; a document it does not have yet (signed a moment ago) from the primary."""
    page = container.pki.reads.run(lambda session: _document_page(container, session, document_id, lang),
                                   miss_errors=(UnknownDocument,))
    # the verdict and the log's proofs from the primary: a replica that has not yet replayed a withdrawal, a
    # supersession or the signer's revocation would show "valid", and its older checkpoint would look like a
    # rollback. Two reads by primary key; the rest of the page (names, places, seal) may lag harmlessly.
    with transaction(container.sessions, read_only=True) as session:
        doc = lifecycle.get_document(session, page.document_id)
        _title, cert_row = _signer(session, doc.signer_serial)
        status = _status(doc, cert_row, page.commune_name, lang)
        found = transparency.document_log(session, page.document_id, watch=container.verifier.log_watch)
    return dataclasses.replace(page, status=status, log=_log_lines(found, page.document_id, lang))


def _document_page(container: Container, session: Session, document_id: str, lang: str) -> DocumentPage:
    doc = lifecycle.get_document(session, document_id)
    doc_type = container.signing.policy.types.get(doc.document_type)
    local_day = doc.signed_at.astimezone(VN).date() if doc.signed_at.tzinfo else doc.signed_at.date()
    try:
        unit = units.view(session, doc.commune_code, local_day)
        if lang == "vi":
            commune, province = unit.full_name, unit.province_name
        else:
            commune = _english(unit.name_en, unit.kind)
            province = units.lookup(session, unit.province_code, local_day).name_en if unit.province_code else None
        where = f"{commune}, {province}" if province else commune
    except NotFound:
        commune = where = _t(lang, "commune_code", code=doc.commune_code)
    try:
        contact: units.Contact | None = units.contact(session, doc.commune_code, dt.datetime.now(VN).date())
    except NotFound:  # the unit has since merged away: the page names it as it was, without contacts
        contact = None
    title, cert_row = _signer(session, doc.signer_serial)
    doc_title = (getattr(doc_type, f"title_{lang}") if doc_type else None) or doc.document_type
    facts = [Fact(_t(lang, "f_type"), doc_title), Fact(_t(lang, "f_issuer"), where),
             Fact(_t(lang, "f_signer"), doc.signer_name)]
    if title:
        facts.append(Fact(_t(lang, "f_title"), title))
    facts += [Fact(_t(lang, "f_signed"), _when(doc.signed_at, lang)), Fact(_t(lang, "f_id"), grouped(doc.id))]
    seal = _seal_facts(doc.offline_seal, doc_type, lang)
    return DocumentPage(doc.id, _status(doc, cert_row, commune, lang), facts, seal, doc.commune_code, commune,
                        contact)


def _log_lines(found: transparency.DocumentLog, document_id: str, lang: str) -> tuple[LogLine, ...]:
    """The log lines: "recorded as entry N" only for a proof verified against the log's key and newest checkpoint."""
    lines: list[LogLine] = []
    reg = found.registration
    if found.state == "logged" and reg is not None:
        lines.append(LogLine("logged", _t(lang, "log_logged", index=reg.index, date=_entry_when(reg.time, lang)),
                             f"/log/proof/{document_id}?version={reg.version}"))
        if found.newer_pending:
            lines.append(LogLine("version_pending", _t(lang, "log_version_pending")))
    elif found.state in ("pending", "unconfirmed"):
        lines.append(LogLine(found.state, _t(lang, f"log_{found.state}")))
    for entry in found.lifecycle:
        key = "withdrawn" if entry.type == "document-withdrawn" else "superseded"
        lines.append(LogLine(key, _t(lang, f"log_{key}", index=entry.index, date=_entry_when(entry.time, lang))))
    if found.lifecycle_pending:
        lines.append(LogLine("change_pending", _t(lang, "log_change_pending")))
    return tuple(lines)


def _entry_when(stamp: str, lang: str) -> str:
    try:
        return _when(dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC), lang)
    except ValueError:
        return "?"


# -- upload results --------------------------------------------------------------------------------
RESULT_TODO = {"genuine": "r_genuine_todo", "earlier_version": "r_earlier_todo", "modified": "r_modified_todo",
               "timestamp_only": "r_ask_again_todo", "unregistered": "r_ask_again_todo",
               "other_document": "r_other_todo", "withdrawn": "r_ask_again_todo", "not_genuine": "r_ask_again_todo"}


def _result(report: VerificationReport, document_id: str, lang: str, commune: str = "") -> dict[str, Any]:
    """Plain words for a ``signing.verify.report.VerificationReport`` against the page's document."""
    reg = report.registry
    summary = getattr(report.summary, lang)
    signatures = [{
        # the certificate's words, shown as quoted data (a forged subject cannot read as the page's own text)
        "who": quoted(s.signer.common_name) if s.signer and s.signer.common_name else _t(lang, "timestamp_sig"),
        "title": quoted(s.signer.title) if s.signer and s.signer.title else None,
        "when": _when(s.timestamp.time, lang) if s.timestamp
        else _when(s.claimed_signing_time, lang) if s.claimed_signing_time else None,
        "ok": s.indication == Indication.TOTAL_PASSED, "summary": getattr(s.summary, lang),
    } for s in report.signatures]
    base = {"summary": summary, "indication": report.indication, "signatures": signatures, "link": None,
            "extract": bool(report.modifications or report.visual_differences)}
    signed = any(s.kind == "signature" for s in report.signatures)
    if report.signatures and not signed:
        key, tone, sentence = "timestamp_only", "bad", _t(lang, "r_timestamp_only")
    elif report.modifications or report.seen_changed:
        key, tone, sentence = "modified", "bad", _t(lang, "r_modified", what=_what_changed(report, lang))
    elif reg is None:
        key, tone, sentence = "unregistered", "bad", _t(lang, "r_unregistered", id=grouped(document_id))
    elif reg.document_id != document_id:
        key, tone = "other_document", "bad"
        sentence = _t(lang, "r_other", other=grouped(reg.document_id), id=grouped(document_id))
        base["link"] = f"/v/{reg.document_id}"
    elif reg.status != DocumentStatus.VALID:
        key, tone, sentence = "withdrawn", "bad", _t(lang, "r_withdrawn", id=grouped(document_id))
    elif not report.genuine:
        key, tone, sentence = "not_genuine", "bad", _t(lang, "r_not_genuine")
    elif reg.version != reg.current_version:  # (the current version plus accountable additions is genuine)
        key, tone = "earlier_version", "warn"
        sentence = _t(lang, "r_earlier", version=reg.version, current=reg.current_version)
    else:
        key, tone, sentence = "genuine", "ok", _t(lang, "r_genuine", id=grouped(document_id))
    headline = _t(lang, {"ok": "r_ok_head", "warn": "r_warn_head", "bad": "r_bad_head"}[tone])
    todo = _t(lang, RESULT_TODO[key], commune=commune)
    return base | {"key": key, "tone": tone, "headline": headline, "sentence": sentence, "todo": todo}


def _what_changed(report: VerificationReport, lang: str) -> str:
    """The first change the report names, in the citizen's words, and how many more there are."""
    texts = [getattr(m.text, lang) for m in report.modifications] or \
            [getattr(v.text, lang) for v in report.visual_differences if v.kind != "annotation_overlap"]
    first = texts[0].rstrip(".") if texts else ""
    more = len(texts) - 1
    return f"{first} {_t(lang, 'r_more', n=more)}" if more > 0 else first


async def _read_upload(request: Request, limit: int) -> bytes:
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("no file was chosen", code="no_file")
    return await read_pdf(upload, limit)


# -- rendering -------------------------------------------------------------------------------------
def _render(name: str, status: int, lang: str, path: str, **context: Any) -> HTMLResponse:
    other = "en" if lang == "vi" else "vi"
    html = _env.get_template(name).render(lang=lang, t=_strings[lang], switch_href=f"{path}?lang={other}",
                                          switch_text=_strings[other]["lang_name"], **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _error_page(exc: KysoError, lang: str, path: str, document_id: str | None = None, *,
                status: int | None = None) -> HTMLResponse:
    status = status or status_for(exc)
    key = {"unknown_document": "e_unknown", "malformed_document_id": "e_malformed", "rate_limited": "e_rate",
           "pdf_too_large": "e_too_large", "encrypted_pdf": "e_encrypted", "unreadable_pdf": "e_unreadable",
           "too_complex": "e_too_complex", "no_file": "e_no_file",
           "request_too_large": "e_too_large"}.get(exc.code, "e_other" if status < 500 else "e_busy")
    response = _render("error.html", status, lang, path, code=exc.code, key=key, document_id=document_id,
                       headline=_t(lang, key + "_head"), sentence=_t(lang, key, id=document_id or ""),
                       todo=_t(lang, key + "_todo"))
    if status in (429, 503):
        response.headers["Retry-After"] = retry_after(exc)
    return response


@cache  # kept: packaged static files; bounded by the files present (a miss raises, not cached)
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@lru_cache(maxsize=1)  # kept: a digest of the packaged static files and templates, computed once
def _assets_version() -> str:
    digest = hashlib.sha256()
    for path in sorted([*STATIC.iterdir(), *TEMPLATES.iterdir()]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# -- routes: static parts first, so they are not taken for document ids ------------------------------
@router.get("/", response_class=HTMLResponse)
def landing(lang: str | None = Query(default=None)) -> HTMLResponse:
    """The front door: who runs this service, check a document, and where integrators go."""
    return _render("landing.html", 200, _lang(lang), "/", typed="")


@router.get("/v", response_class=HTMLResponse)
@router.get("/v/", response_class=HTMLResponse)
def lookup(ma: str | None = Query(default=None),
           lang: str | None = Query(default=None)) -> Response:
    """Type the document code printed on the paper: ``?ma=RZ7P-EK2V-V2LF`` opens ``/v/RZ7PEK2VV2LF``."""
    code = _lang(lang)
    if ma is None or not ma.strip():
        return _render("lookup.html", 200, code, "/v", typed="", problem=None)
    try:
        canonical = normalize_id(ma[:200])
    except KysoError:
        return _render("lookup.html", 422, code, "/v", typed=ma[:40], problem=_t(code, "l_problem", typed=ma[:40]))
    suffix = f"?lang={code}" if lang else ""
    return RedirectResponse(f"/v/{canonical}{suffix}", status_code=303, headers=PAGE_HEADERS)


@router.get("/v/seal.js")
def seal_js() -> Response:
    return Response(_asset("seal.js"), media_type="application/javascript; charset=utf-8",
                    headers={**HEADERS, "Cache-Control": "public, max-age=3600"})


@router.get("/v/sw.js")
def service_worker() -> Response:
    body = _asset("sw.js").replace(b"__VERSION__", _assets_version().encode())
    return Response(body, media_type="application/javascript; charset=utf-8",
                    headers={**HEADERS, "Cache-Control": "no-cache"})


@router.get("/v/keys.json")
def keys_json(container: ContainerDep) -> JSONResponse:
    """The offline-seal public keys (JWK) and the labels the seal script shows; public and cacheable."""
    types = {name: {"title_vi": t.title_vi, "title_en": t.title_en,
                    "seal_fields": [f.model_dump(include={"name", "label_vi", "label_en"}) for f in t.seal_fields]}
             for name, t in container.signing.policy.types.items()}
    return JSONResponse({"keys": offline_seal.public_keys(container.pki), "document_types": types},
                        headers={**HEADERS, "Cache-Control": "public, max-age=3600"})


@router.get("/v/units.json")
def units_json(container: ContainerDep) -> JSONResponse:
    """Commune names by province (today's catalogue), so the offline page can name the issuer:
    ``{province code: [province name, {commune code: commune full name}]}``."""
    today = dt.datetime.now(VN).date()
    rows = container.pki.reads.run(lambda session: units.search(session, today, limit=100_000))
    body: dict[str, list[Any]] = {u.code: [u.name, {}] for u in rows if u.level == "province"}
    for unit in rows:
        if unit.level == "commune" and unit.province_code in body:
            body[unit.province_code][1][unit.code] = unit.full_name
    return JSONResponse(body, headers={**HEADERS, "Cache-Control": "public, max-age=86400"})


@router.get("/v/offline", response_class=HTMLResponse)
def offline_shell(lang: str | None = Query(default=None)) -> HTMLResponse:
    """The page the service worker shows when there is no connection: the seal check only."""
    code = _lang(lang)
    response = _render("offline.html", 200, code, "/v/offline")
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/v/{document_id}", response_class=HTMLResponse)
def document(document_id: str, container: ContainerDep, lang: str | None = Query(default=None)) -> Response:
    code = _lang(lang)
    path = f"/v/{document_id}"
    try:
        canonical = normalize_id(document_id)
        if canonical != document_id:  # typed as printed (groups, lower case): one address per document
            suffix = f"?lang={code}" if lang else ""
            return RedirectResponse(f"/v/{canonical}{suffix}", status_code=308, headers=PAGE_HEADERS)
        page = document_page(container, canonical, code)
    except KysoError as exc:
        return _error_page(exc, code, path, document_id[:40])
    return _render("document.html", 200, code, path, page=page, result=None)


@router.post("/v/{document_id}", response_class=HTMLResponse)
async def upload(document_id: str, request: Request, container: ContainerDep,
                 lang: str | None = Query(default=None)) -> HTMLResponse:
    code = _lang(lang)
    path = f"/v/{document_id}"
    try:
        canonical = normalize_id(document_id)
        await run_in_threadpool(limit_verification, request)  # before the body is read
        page = await run_in_threadpool(document_page, container, canonical, code)
        pdf = await _read_upload(request, container.settings.max_pdf_bytes)
        report = await verify_gate(request).run(container.verifier.verify, pdf)
    except KysoError as exc:
        return _error_page(exc, code, path, document_id[:40])
    except Exception:  # a citizen gets a page, the log gets the trace
        log.exception("verification of an upload for %s failed unexpectedly", document_id[:40])
        return _error_page(KysoError("unexpected", code="internal_error"), code, path, document_id[:40], status=500)
    return _render("document.html", 200, code, path, page=page,
                   result=_result(report, canonical, code, page.commune_name))


@router.post("/v/{document_id}/signed-revision")
async def signed_revision(document_id: str, request: Request, container: ContainerDep,
                          lang: str | None = Query(default=None)) -> Response:
    """The part of the citizen's own file that the signer signed (nothing is read from the registry,
    so no one gets a document they do not already hold)."""
    code = _lang(lang)
    path = f"/v/{document_id}"
    try:
        normalize_id(document_id)
        await run_in_threadpool(limit_verification, request)
        pdf = await _read_upload(request, container.settings.max_pdf_bytes)
        prefix, _field, revision = await verify_gate(request).run(extract_signed_revision(container.settings), pdf)
    except KysoError as exc:
        return _error_page(exc, code, path, document_id[:40])
    except Exception:  # a citizen gets a page, the log gets the trace
        log.exception("extracting the signed revision of an upload for %s failed unexpectedly", document_id[:40])
        return _error_page(KysoError("unexpected", code="internal_error"), code, path, document_id[:40], status=500)
    return Response(prefix, media_type="application/pdf",
                    headers={**HEADERS, "Content-Disposition": f'attachment; filename="ban-da-ky-{revision}.pdf"'})
