"""REST v1: CAs, certificates, revocation, renewal, mergers, CRL publication.

A scoped client token reads only the certificates of the communes it covers, plus those of no commune
(the CAs' OCSP responder, TSA and QR-seal certificates: public trust material, already published in
signatures and AIA). Another commune's certificate is answered like an unknown serial. The CA list and
chains are public for every reader.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Body, Header, Query, Response

from core import clock
from core.db import transaction
from core.errors import InvalidInput
from pki import approvals, crl, issuance, merger, registration, revocation, store
from pki.authorities import chain_pem
from pki.issuance import IssueRequest
from pki.reasons import Reason, resolve_reason

from ..deps import ContainerDep, Operator, Reader, ReaderAccess, SessionDep
from ..schemas import (
    API_ERRORS,
    CaOut,
    CertificateList,
    CertificateOut,
    CrlOut,
    ImportIn,
    IssuedOut,
    IssueIn,
    MergerIn,
    MergerOut,
    RegistrationIn,
    RegistrationOut,
    RenewIn,
    RevokeIn,
    StatusCheckOut,
)

router = APIRouter(prefix="/api/v1", tags=["certificates"], responses=API_ERRORS)


# CAs and their chains are public trust material: every reader, scoped or not, sees them all
@router.get("/cas", response_model=list[CaOut], summary="List certificate authorities")
def list_cas(container: ContainerDep, session: SessionDep, _: Reader) -> list[CaOut]:
    cas = store.list_cas(session)
    names = {ca.id: ca.name for ca in cas}
    return [CaOut.of(ca, names.get(ca.parent_id or -1), container.settings.base_url) for ca in cas]


@router.get("/cas/{name}/chain.pem", summary="CA certificate and its issuers (PEM)",
            response_class=Response, responses={200: {"content": {"application/pem-certificate-chain": {}}}})
def ca_chain(name: str, container: ContainerDep, session: SessionDep, _: Reader) -> Response:
    ca = store.get_ca(session, name)
    return Response(chain_pem(container.pki, session, ca), media_type="application/pem-certificate-chain")


CaReason = Annotated[str, Body(min_length=1, max_length=40, examples=["cessationOfOperation"], description=(
    "RFC 5280 reason: cACompromise, affiliationChanged, superseded or cessationOfOperation "
    "(keyCompromise is recorded as cACompromise)"))]
Why = Annotated[str | None, Body(max_length=1000, description="Why, in words (shown to the approving operator)")]


@router.post("/cas/{name}/revoke", status_code=202,
             summary="Ask to revoke an issuing CA (runs only when a second operator approves it)")
def revoke_ca(name: str, reason: CaReason, container: ContainerDep, principal: Operator,
              why: Why = None) -> dict[str, Any]:
    """Files a pending ``revoke-ca`` approval; `POST /api/v1/approvals/{id}/approve` by another operator
    revokes the CA: its serial goes on the parent's CRL and OCSP, and it can no longer issue."""
    row = approvals.request(container.pki, "revoke-ca", name, why or f"revoke CA {name} ({reason})", principal.actor,
                            params={"revocation_reason": reason})
    return approvals.as_dict(row)


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="Retry-safe: the same key returns the same certificate")]
REPLAYED: dict[int | str, dict[str, Any]] = {200: {
    "model": IssuedOut, "description": "A replay of an earlier request with this Idempotency-Key: the same body",
    "headers": {"Idempotent-Replayed": {"description": "true", "schema": {"type": "string", "enum": ["true"]}}}}}


@router.post("/certificates", response_model=IssuedOut, status_code=201,
             summary="Issue a certificate from a CSR, or with a key generated in the keystore",
             description="With an `Idempotency-Key` header, a retry (say after a dropped connection) returns the "
                         "certificate, credential and key the first request produced instead of issuing another: "
                         "200 with `Idempotent-Replayed: true` and the same body. The key is per client (token); "
                         "reusing it for a different request is refused with 409 `idempotency_key_reused`.",
             responses=REPLAYED)
def issue(body: IssueIn, container: ContainerDep, principal: Operator, response: Response,
          idempotency_key: IdempotencyKey = None) -> IssuedOut:
    _known_keystore(container, body.keystore)
    result = issuance.issue(container.pki, IssueRequest(
        profile=body.profile, subject=body.subject, commune_code=body.commune_code,
        csr=body.csr.encode() if body.csr else None, key_type=body.key_type, keystore=body.keystore,
        validity_days=body.validity_days, ca=body.ca,
    ), principal.actor, idempotency_key=idempotency_key)
    return _issued(container, result, response)


def _known_keystore(container: ContainerDep, name: str | None) -> None:
    """A keystore the caller names must be one configured here: the caller's mistake (422), not the
    server's (the keystore registry says 503 for a misconfigured default)."""
    names = container.pki.keystores.names()
    if name is not None and name not in names:
        raise InvalidInput(f"keystore {name!r} is not configured here; choose one of: {', '.join(names)} "
                           "(or leave it out for the default)", code="unknown_keystore")


def _issued(container: ContainerDep, result: issuance.IssueResult, response: Response | None = None) -> IssuedOut:
    if result.replayed and response is not None:  # a retry with the same Idempotency-Key: nothing new was created
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    with transaction(container.sessions, read_only=True) as session:
        row = store.get_certificate(session, result.certificate.serial)
        credential = result.credential_id or store.credential_ids(session, [row]).get(row.id)
        return IssuedOut(certificate=CertificateOut.of(row, clock.now(), credential),
                         credential_id=result.credential_id, key_ref=result.key_ref)


@router.get("/certificates", response_model=CertificateList, summary="List and filter certificates")
def list_certificates(
    session: SessionDep, access: ReaderAccess,
    subject: Annotated[str | None, Query(max_length=200, description="Substring of the subject DN")] = None,
    commune: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
    province: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    status: Literal["valid", "revoked", "on_hold", "expired"] | None = None,
    profile: str | None = None,
    ca: str | None = None,
    expires_before: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,  # bounded: a huge one overflowed the database's integer
) -> CertificateList:
    """A scoped client sees its communes' certificates and those of no commune; filtering by a commune
    or province it does not cover finds nothing (an empty list, not an error)."""
    if expires_before is not None and expires_before.tzinfo is None:
        expires_before = expires_before.replace(tzinfo=dt.UTC)
    now = clock.now()
    flt = store.CertificateFilter(subject=subject, commune_code=commune, province_code=province, status=status,
                                  profile=profile, ca=ca, expires_before=expires_before, limit=limit, offset=offset,
                                  communes=access.visible_communes(session))
    rows, total = store.list_certificates(session, flt, now)
    credentials = store.credential_ids(session, rows)
    return CertificateList(total=total, items=[CertificateOut.of(r, now, credentials.get(r.id)) for r in rows])


@router.get("/certificates/{serial}", response_model=CertificateOut, summary="Show one certificate",
            responses={200: {"content": {"application/pkix-cert": {}, "application/x-pem-file": {}}}})
def show_certificate(
    serial: str, session: SessionDep, access: ReaderAccess,
    # the public ?format= parameter: FastAPI names it after the argument
    format: Annotated[Literal["json", "pem", "der"],  # noqa: A002
                      Query(description="json (default), pem or der")] = "json",
) -> CertificateOut | Response:
    row = store.get_certificate(session, serial)
    access.check_certificate(session, serial, row.commune_code)  # another commune's: 404 like an unknown serial
    if format == "der":
        return Response(row.der, media_type="application/pkix-cert",
                        headers={"Content-Disposition": f'attachment; filename="{row.serial}.cer"'})
    if format == "pem":
        pem = x509.load_der_x509_certificate(row.der).public_bytes(serialization.Encoding.PEM)
        return Response(pem, media_type="application/x-pem-file",
                        headers={"Content-Disposition": f'attachment; filename="{row.serial}.pem"'})
    return CertificateOut.of(row, clock.now(), store.credential_ids(session, [row]).get(row.id))


@router.post("/certificates/{serial}/revoke", response_model=CertificateOut,
             summary="Revoke (or hold) a certificate with an RFC 5280 reason or a legal ground")
def revoke(serial: str, body: RevokeIn, container: ContainerDep, principal: Operator) -> CertificateOut:
    reason = resolve_reason(body.reason.value if body.reason else None, body.ground.value if body.ground else None)
    row = revocation.revoke(container.pki, serial, reason, principal.actor, invalidity_date=body.invalidity_date)
    return _reload(container, row.serial)


@router.post("/certificates/{serial}/release", response_model=CertificateOut,
             summary="Release a certificate from certificateHold (removeFromCRL)")
def release(serial: str, container: ContainerDep, principal: Operator) -> CertificateOut:
    row = revocation.release(container.pki, serial, principal.actor)
    return _reload(container, row.serial)


@router.post("/certificates/{serial}/renew", response_model=IssuedOut, status_code=201,
             summary="Renew with the same key, or a new one (the old certificate is then superseded)",
             description="`Idempotency-Key` works as for `POST /api/v1/certificates`: a retried renewal returns "
                         "the renewed certificate (200, `Idempotent-Replayed: true`) instead of a second one, or "
                         "a 409 for the certificate the first try superseded.",
             responses=REPLAYED)
def renew(serial: str, body: RenewIn, container: ContainerDep, principal: Operator, response: Response,
          idempotency_key: IdempotencyKey = None) -> IssuedOut:
    result = issuance.renew(container.pki, serial, principal.actor, new_key=body.new_key,
                            csr=body.csr.encode() if body.csr else None, key_type=body.key_type,
                            idempotency_key=idempotency_key)
    return _issued(container, result, response)


def _reload(container: ContainerDep, serial: str) -> CertificateOut:
    with transaction(container.sessions, read_only=True) as session:
        row = store.get_certificate(session, serial)
        return CertificateOut.of(row, clock.now(), store.credential_ids(session, [row]).get(row.id))


@router.post("/mergers", response_model=MergerOut,
             summary="Commune merger: re-issue certificates under the new unit and revoke the old ones")
def merge(body: MergerIn, container: ContainerDep, principal: Operator) -> MergerOut:
    report = merger.merge(container.pki, body.from_codes, body.into_code, principal.actor,
                          reason=Reason(body.reason), effective=body.effective, dry_run=body.dry_run)
    return MergerOut.model_validate(report, from_attributes=True)


@router.post("/cas/{name}/crl", response_model=list[CrlOut], summary="Publish a new full and delta CRL now")
def publish_crl(name: str, container: ContainerDep, principal: Operator) -> list[CrlOut]:
    crls = crl.publish_now(container.pki, name, principal.actor)
    return [CrlOut(ca=name, **{k: getattr(c, k) for k in ("number", "is_delta", "base_number", "this_update",
                                                          "next_update", "entries")}) for c in crls]


@router.post("/registrations", response_model=RegistrationOut, status_code=201, tags=["registration authority"],
             summary="RA mode: generate a key in the keystore and a CSR for an external CA")
def register(body: RegistrationIn, container: ContainerDep, principal: Operator) -> RegistrationOut:
    _known_keystore(container, body.keystore)
    pending = registration.request(container.pki, body.subject, principal.actor, profile=body.profile,
                                   commune_code=body.commune_code, key_type=body.key_type, keystore=body.keystore)
    return RegistrationOut(credential_id=pending.credential_id, key_ref=pending.key_ref, csr=pending.csr_pem)


@router.post("/registrations/{credential_id}/certificate", response_model=CertificateOut,
             tags=["registration authority"],
             summary="RA mode: bind the certificate the external CA issued to the waiting key")
def import_registration(credential_id: str, body: ImportIn, container: ContainerDep,
                        principal: Operator) -> CertificateOut:
    row = registration.import_certificate(container.pki, credential_id, body.pem.encode(), principal.actor)
    return _reload(container, row.serial)


@router.post("/certificates/{serial}/status-check", response_model=StatusCheckOut, tags=["registration authority"],
             summary="RA mode: ask the external CA's OCSP responder and record a revocation")
def status_check(serial: str, container: ContainerDep, principal: Operator) -> StatusCheckOut:
    check = registration.check_status(container.pki, serial, principal.actor)
    return StatusCheckOut(serial=check.serial, status=check.status, source=check.source, reason=check.reason)
