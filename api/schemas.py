"""Request and response models of REST v1 (separate from the database models)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ConfigDict, Field

from hsm import KeyType
from pki.models import Certificate, CertificateAuthority, CertificateStatus
from pki.names import SubjectInfo
from pki.reasons import Ground, Reason


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine code, e.g. unknown_certificate, invalid_request")
    message: str = Field(description="What is wrong and what to do, in words a person can act on")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    """The one shape of every kyso error (api/errors.py)."""

    error: ErrorDetail


class CscErrorOut(BaseModel):
    """The CSC API v2 error shape (signDoc adds kyso's own ``kyso`` member)."""

    model_config = ConfigDict(extra="allow")
    error: str
    error_description: str


ERROR_MEANINGS = {
    400: "The request cannot be used (malformed data, or refused by a rule it names)",
    401: "No token, or one that is unknown, expired or revoked (see WWW-Authenticate)",
    403: "The token's role or scope does not allow this (the refusal is audited)",
    404: "No such thing (or one outside the token's scope, answered the same way)",
    409: "The request contradicts the current state (already revoked, already exists, ...)",
    413: "The request body is larger than the limit for this endpoint",
    415: "The body is not sent with the content type this endpoint takes",
    422: "The request is not valid: `details.problems` lists each field and what is wrong",
    429: "Too many requests from this address; see Retry-After",
    503: "A dependency (keystore, CA, database) cannot serve now; see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for kyso's error shape at ``statuses`` (declared on routers and routes, so that a
    client generator and schemathesis know every answer an operation can give)."""
    return {status: {"model": ErrorOut, "description": ERROR_MEANINGS[status]} for status in statuses}


# every authenticated REST v1 router; routes add 415/429 where they read bodies by content type or rate-limit
API_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 503)
# CSC answers every client error in its own shape, 400 for a malformed request (never 422)
CSC_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": CscErrorOut, "description": "CSC error: invalid_request (400), invalid_token (401), "
                                                 "access_denied (403), not found (404), ..."},
    413: {"model": ErrorOut, "description": ERROR_MEANINGS[413] + " (refused before CSC sees it: kyso's shape)"},
    503: {"model": CscErrorOut, "description": ERROR_MEANINGS[503]},
}


class IssueIn(_In):
    """Either ``csr`` (PEM PKCS#10) or server-side key generation (``key_type``, ``keystore``)."""

    profile: str = Field(default="specialist", examples=["specialist"])
    subject: SubjectInfo
    commune_code: str | None = Field(default=None, pattern=r"^\d{5}$", examples=["00004"])
    csr: str | None = Field(default=None, max_length=20000, description="PEM PKCS#10 request")
    key_type: KeyType | None = None
    keystore: str | None = Field(default=None, description="Keystore for a generated key (default: the configured one)")
    validity_days: int | None = Field(default=None, ge=1, le=3650)
    ca: str | None = Field(default=None, description="Issuing CA name, when there are several")


class RevokeIn(_In):
    """RFC 5280 reason, or the legal ground it follows from (e.g. officer_moved → affiliationChanged)."""

    reason: Reason | None = None
    ground: Ground | None = None
    invalidity_date: dt.datetime | None = Field(
        default=None, description="RFC 5280 5.3.2: since when the key is known or suspected compromised (typically "
        "with keyCompromise); ISO 8601, UTC if no offset. Not in the future, not before the certificate's "
        "notBefore. Put on the CRL entry and the OCSP answer.")


class RenewIn(_In):
    new_key: bool = False
    csr: str | None = Field(default=None, max_length=20000)
    key_type: KeyType | None = None


class MergerIn(_In):
    from_codes: list[str] = Field(min_length=1, max_length=100, description="Codes of the units merged away")
    into_code: str = Field(pattern=r"^\d{5}$", description="Code of the unit they become")
    effective: dt.date | None = None
    reason: Literal["affiliationChanged", "superseded", "cessationOfOperation"] = "affiliationChanged"
    dry_run: bool = False


class CertificateOut(BaseModel):
    serial: str
    ca: str
    profile: str
    subject: str
    common_name: str
    commune_code: str | None
    province_code: str | None
    not_before: dt.datetime
    not_after: dt.datetime
    status: Literal["valid", "revoked", "on_hold", "expired"]
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    invalidity_date: dt.datetime | None = None
    sha256: str
    key_ref: str | None
    replaces_serial: str | None
    credential_id: str | None = Field(default=None, description="The signing credential holding this certificate's "
                                      "key (name it in signing requests; the specialist's id); null when kyso holds "
                                      "no credential for it")
    pem: str

    @classmethod
    def of(cls, row: Certificate, now: dt.datetime, credential_id: str | None = None) -> CertificateOut:
        status = "expired" if row.status == CertificateStatus.VALID and row.not_after <= now else row.status
        pem = x509.load_der_x509_certificate(row.der).public_bytes(serialization.Encoding.PEM).decode()
        return cls(serial=row.serial, ca=row.ca.name, profile=row.profile, subject=row.subject,
                   common_name=row.common_name, commune_code=row.commune_code, province_code=row.province_code,
                   not_before=row.not_before, not_after=row.not_after, status=status,  # type: ignore[arg-type]
                   revoked_at=row.revoked_at if row.status != CertificateStatus.VALID else None,
                   revocation_reason=row.revocation_reason,
                   invalidity_date=row.invalidity_date if row.status == CertificateStatus.REVOKED else None,
                   sha256=row.sha256, key_ref=row.key_ref,
                   replaces_serial=row.replaces_serial, credential_id=credential_id, pem=pem)


class IssuedOut(BaseModel):
    certificate: CertificateOut
    credential_id: str | None = Field(description="Name this in signing requests (key generated in kyso only)")
    key_ref: str | None


class CertificateList(BaseModel):
    total: int
    items: list[CertificateOut]


class CaOut(BaseModel):
    name: str
    role: str
    mode: str
    status: str
    subject: str
    parent: str | None
    key_ref: str | None
    certificate_url: str
    crl_url: str
    delta_crl_url: str
    ocsp_url: str
    not_after: dt.datetime | None

    @classmethod
    def of(cls, ca: CertificateAuthority, parent: str | None, base_url: str) -> CaOut:
        not_after = x509.load_der_x509_certificate(ca.cert_der).not_valid_after_utc if ca.cert_der else None
        return cls(name=ca.name, role=ca.role, mode=ca.mode, status=ca.status, subject=ca.subject, parent=parent,
                   key_ref=ca.key_ref, certificate_url=f"{base_url}/ca/{ca.name}.crt",
                   crl_url=f"{base_url}/crl/{ca.name}.crl", delta_crl_url=f"{base_url}/crl/{ca.name}-delta.crl",
                   ocsp_url=f"{base_url}/ocsp", not_after=not_after)


class MergerChangeOut(BaseModel):
    old_serial: str
    new_serial: str | None
    common_name: str
    old_commune: str
    old_subject: str
    new_subject: str
    credential_id: str | None


class MergerOut(BaseModel):
    from_codes: list[str]
    into_code: str
    into_name: str
    effective: dt.date
    reason: str
    dry_run: bool
    changes: list[MergerChangeOut]


class AuditVerifyOut(BaseModel):
    ok: bool
    entries: int
    first_broken_seq: int | None
    problem: str | None


class CrlOut(BaseModel):
    ca: str
    number: int
    is_delta: bool
    base_number: int | None
    this_update: dt.datetime
    next_update: dt.datetime
    entries: int


class UnitOut(BaseModel):
    code: str
    level: str
    kind: str
    name: str
    full_name: str
    name_en: str
    province_code: str | None
    valid_from: dt.date
    valid_to: dt.date | None


class RegistrationIn(_In):
    """RA mode: kyso generates the key and a CSR for an external CA."""

    profile: str = "specialist"
    subject: SubjectInfo
    commune_code: str | None = Field(default=None, pattern=r"^\d{5}$")
    key_type: KeyType | None = None
    keystore: str | None = None


class RegistrationOut(BaseModel):
    credential_id: str
    key_ref: str
    csr: str = Field(description="PEM PKCS#10 request to send to the external CA")


class ImportIn(_In):
    pem: str = Field(max_length=100_000, description="The issued certificate followed by its issuer (PEM)")


class StatusCheckOut(BaseModel):
    serial: str
    status: str
    source: str
    reason: str | None
