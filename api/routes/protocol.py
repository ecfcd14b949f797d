"""Public protocol endpoints: OCSP (RFC 6960/5019), time-stamping (RFC 3161/5816), CRLs and CA
certificates (RFC 5280 AIA/CDP)."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import time
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from core import clock, metrics
from core.db import transaction
from core.errors import Unavailable
from pki import crl, ocsp, store
from pki.errors import CANotReady

from ..container import Container
from ..deps import ContainerDep
from ..errors import RequestTooLarge, UnsupportedMediaType
from ..schemas import ErrorOut, error_responses

router = APIRouter(tags=["protocols"], responses=error_responses(400, 404, 413, 415, 422, 503))
OCSP_REQUEST = "application/ocsp-request"
MAX_OCSP_REQUEST = 10_000
TSA_QUERY, TSA_REPLY = "application/timestamp-query", "application/timestamp-reply"
MAX_TSA_REQUEST = 10_000


@lru_cache(maxsize=8192)  # kept: pure (a response's bytes and times → its HTTP headers), bounded
def _validity_headers(der: bytes, this_update: dt.datetime, next_update: dt.datetime) -> tuple[tuple[str, str], ...]:
    """Headers that depend only on the response: computed once per pre-produced answer."""
    return (
        ("Last-Modified", format_datetime(this_update, usegmt=True)),
        ("Expires", format_datetime(next_update, usegmt=True)),
        ("ETag", '"' + hashlib.sha1(der).hexdigest() + '"'),  # RFC 5019 6.2 suggests it
    )


OCSP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "OCSPResponse (successful, or malformedRequest/unauthorized)",
          "content": {"application/ocsp-response": {"schema": {"type": "string", "format": "binary"}}}},
    503: {"description": "OCSPResponse with status tryLater: the database cannot be reached; retry (Retry-After)",
          "content": {"application/ocsp-response": {"schema": {"type": "string", "format": "binary"}}}},
}


def _ocsp_response(answer: ocsp.OcspAnswer, *, cacheable: bool) -> Response:
    headers: dict[str, str] = {}
    if answer.this_update and answer.next_update:
        if cacheable:
            headers.update(_validity_headers(answer.der, answer.this_update, answer.next_update))
            max_age = max(0, int(answer.next_update.timestamp() - time.time()))
            headers["Cache-Control"] = f"max-age={max_age}, public, no-transform, must-revalidate"
        else:
            headers["Cache-Control"] = "no-store"
    return Response(answer.der, media_type="application/ocsp-response", headers=headers)


@router.post("/ocsp", summary="OCSP over POST (RFC 6960 A.1)", response_class=Response,
             description="Send a DER OCSPRequest as `application/ocsp-request` (at most 10 kB). A request kyso "
                         "cannot parse gets an OCSPResponse with status malformedRequest, still with HTTP 200.",
             openapi_extra={"requestBody": {"required": True, "content": {
                 OCSP_REQUEST: {"schema": {"type": "string", "format": "binary"}}}}},
             responses=OCSP_RESPONSES)
async def ocsp_post(request: Request, container: ContainerDep) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != OCSP_REQUEST:
        raise UnsupportedMediaType(f"OCSP requests must be sent as {OCSP_REQUEST}, not {content_type or 'nothing'}")
    body = await request.body()
    if len(body) > MAX_OCSP_REQUEST:
        raise RequestTooLarge(f"an OCSP request is at most {MAX_OCSP_REQUEST} bytes")
    return await _answer(container, body, cacheable=False)


@router.get("/ocsp/{encoded:path}", summary="OCSP over GET (RFC 6960 A.1, RFC 5019, cacheable)",
            response_class=Response, responses=OCSP_RESPONSES)
async def ocsp_get(encoded: str, container: ContainerDep) -> Response:
    if len(encoded) > MAX_OCSP_REQUEST:
        raise RequestTooLarge("the OCSP request in the URL is too long")
    try:
        raw = base64.b64decode(unquote(encoded), validate=False)
    except (binascii.Error, ValueError):
        raw = b""
    return await _answer(container, raw, cacheable=True)


@router.post(
    "/tsa", summary="Time-stamping (RFC 3161, ESSCertIDv2 per RFC 5816)", response_class=Response,
    description="Send a DER TimeStampReq as `application/timestamp-query` (at most 10 kB); the answer is a DER "
                "TimeStampResp. A request kyso cannot grant (unknown hash algorithm, policy or extension, "
                "malformed DER) gets a TimeStampResp with status rejection and a failInfo, still with HTTP 200.",
    openapi_extra={"requestBody": {"required": True, "content": {
        TSA_QUERY: {"schema": {"type": "string", "format": "binary"}}}}},
    responses={200: {"description": "TimeStampResp (granted or rejection)",
                     "content": {TSA_REPLY: {"schema": {"type": "string", "format": "binary"}}}},
               413: {"model": ErrorOut, "description": "request larger than 10 kB"},
               415: {"model": ErrorOut, "description": f"content type is not {TSA_QUERY}"},
               503: {"model": ErrorOut, "description": "no valid TSA certificate (run `kyso ca init`) or keystore "
                                                       "unavailable"}},
)
async def tsa_post(request: Request, container: ContainerDep) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != TSA_QUERY:
        raise UnsupportedMediaType(f"time-stamp requests must be sent as {TSA_QUERY}, not {content_type or 'nothing'}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_TSA_REQUEST:
        raise RequestTooLarge(f"a time-stamp request is at most {MAX_TSA_REQUEST} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TSA_REQUEST:
            raise RequestTooLarge(f"a time-stamp request is at most {MAX_TSA_REQUEST} bytes")
    reply = await run_in_threadpool(container.signing.tsa.respond, bytes(body))
    return Response(reply, media_type=TSA_REPLY, headers={"Cache-Control": "no-store"})


async def _answer(container: Container, der: bytes, *, cacheable: bool) -> Response:
    """Cached pre-produced answers are served on the event loop; anything else goes to a thread."""
    cache = container.pki.ocsp_cache
    try:
        if cache.needs_epoch_check():
            cache.observe_epoch(await run_in_threadpool(_epoch, container))
        answer = cache.get(der, clock.now())
        if answer is None:
            answer = await run_in_threadpool(_answer_from_db, container, der)
            cache.put(der, answer)
    except Unavailable:
        # an OCSP client understands tryLater (RFC 6960), not kyso's JSON; no cached "good" is served while
        # this worker cannot see revocations other workers may be committing
        metrics.OCSP_RESPONSES.labels("try_later").inc()
        return Response(ocsp.try_later().der, status_code=503, media_type="application/ocsp-response",
                        headers={"Retry-After": "5", "Cache-Control": "no-store"})
    metrics.OCSP_RESPONSES.labels(answer.status).inc()
    return _ocsp_response(answer, cacheable=cacheable and answer.pre_produced)


def _epoch(container: Container) -> int:
    with transaction(container.sessions, read_only=True) as session:
        return ocsp.revocation_epoch(session)


def _answer_from_db(container: Container, der: bytes) -> ocsp.OcspAnswer:
    """The answer from the read replica when there is one, unless the replica has not yet replayed the newest
    status change (its revocation epoch is behind the primary's, which ``_epoch`` read moments ago) or does not
    know the certificate or its CA (issued a moment ago): then from the primary. A revocation is never hidden
    by replica lag."""
    known = container.pki.ocsp_cache.watch.epoch

    def work(session: Session) -> tuple[int, ocsp.OcspAnswer]:
        return ocsp.revocation_epoch(session), ocsp.answer(container.pki, session, der)

    def missed(found: tuple[int, ocsp.OcspAnswer]) -> bool:
        epoch, answer = found
        return (known is not None and epoch < known) or answer.status in ("unknown", "unauthorized")

    return container.pki.reads.run(work, missed=missed)[1]


def _crl(container: ContainerDep, name: str, *, delta: bool) -> Response:
    with transaction(container.sessions, read_only=True) as session:
        ca = store.get_ca(session, name)
        current = crl.latest(session, ca, delta=delta)
        if current is None:
            raise CANotReady(f"CA {name!r} has not published a {'delta ' if delta else ''}CRL yet")
        max_age = max(0, min(3600, int((current.next_update - clock.now()).total_seconds())))
        return Response(current.der, media_type="application/pkix-crl", headers={
            "Last-Modified": format_datetime(current.this_update, usegmt=True),
            "Expires": format_datetime(current.next_update, usegmt=True),
            "Cache-Control": f"max-age={max_age}, public",
        })


@router.get("/crl/{name}-delta.crl", summary="Latest delta CRL (DER)", response_class=Response,
            responses={200: {"content": {"application/pkix-crl": {}}}})
def delta_crl(name: str, container: ContainerDep) -> Response:
    return _crl(container, name, delta=True)


@router.get("/crl/{name}.crl", summary="Latest full CRL (DER)", response_class=Response,
            responses={200: {"content": {"application/pkix-crl": {}}}})
def full_crl(name: str, container: ContainerDep) -> Response:
    if name.endswith("-delta"):
        return _crl(container, name.removesuffix("-delta"), delta=True)
    return _crl(container, name, delta=False)


@router.get("/ca/{name}.crt", summary="CA certificate (DER), as named in caIssuers", response_class=Response,
            responses={200: {"content": {"application/pkix-cert": {}}}})
def ca_certificate(name: str, container: ContainerDep) -> Response:
    with transaction(container.sessions, read_only=True) as session:
        ca = store.get_ca(session, name)
        if ca.cert_der is None:
            raise CANotReady(f"CA {name!r} has no certificate yet (pending import)")
        return Response(ca.cert_der, media_type="application/pkix-cert",
                        headers={"Cache-Control": "max-age=86400, public"})
