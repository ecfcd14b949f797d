"""Reads of the certificate store: lookups by name or serial, filtered listings."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core import clock
from core.errors import Unavailable

from .errors import UnknownCA, UnknownCertificate, UnknownCredential
from .models import Certificate, CertificateAuthority, CertificateStatus, Credential

QR_SEAL_PROFILE = "qr-seal"


def normalize_serial(serial: str) -> str:
    """Serials are stored as upper-case hex without separators; accept 0x, colons and lower case."""
    cleaned = serial.strip().removeprefix("0x").removeprefix("0X").replace(":", "").upper()
    if not cleaned or any(ch not in "0123456789ABCDEF" for ch in cleaned) or len(cleaned) > 64:
        raise UnknownCertificate(f"{serial!r} is not a certificate serial number (hexadecimal)")
    return cleaned.lstrip("0") or "0"


def get_ca(session: Session, name: str) -> CertificateAuthority:
    ca = session.execute(select(CertificateAuthority).where(CertificateAuthority.name == name)).scalar_one_or_none()
    if ca is None:
        known = session.execute(select(CertificateAuthority.name)).scalars().all()
        raise UnknownCA(f"no CA named {name!r}; known CAs: {', '.join(known) or 'none (run kyso ca init)'}")
    return ca


def list_cas(session: Session) -> list[CertificateAuthority]:
    return list(session.execute(select(CertificateAuthority).order_by(CertificateAuthority.id)).scalars())


def get_certificate(session: Session, serial: str, *, for_update: bool = False) -> Certificate:
    query = select(Certificate).where(Certificate.serial == normalize_serial(serial))
    if for_update:
        query = query.with_for_update(of=Certificate)
    rows = session.execute(query).scalars().all()
    if not rows:
        raise UnknownCertificate(f"no certificate with serial {serial}")
    if len(rows) > 1:
        raise UnknownCertificate(f"serial {serial} is ambiguous across CAs; name the CA")
    return rows[0]


def current_tsa(session: Session, *, ca: CertificateAuthority | None = None,
                now: dt.datetime | None = None) -> Certificate:
    """The newest valid, unexpired TSA certificate whose key is in a keystore here (optionally of ``ca``).

    Raises ``Unavailable`` (HTTP 503) when there is none: the TSA cannot answer until an operator
    runs ``kyso ca init`` (which adds a missing TSA certificate).
    """
    row = _current_service(session, "tsa", ca, now)
    if row is None:
        where = f" issued by CA {ca.name!r}" if ca is not None else ""
        raise Unavailable(f"kyso has no valid time-stamping (TSA) certificate{where}; run `kyso ca init` to add one",
                          code="tsa_not_ready")
    return row


def current_qr_seal(session: Session, *, ca: CertificateAuthority | None = None,
                    now: dt.datetime | None = None) -> Certificate:
    """The newest valid, unexpired offline-seal (``qr-seal``) certificate whose key is in a keystore here.

    Raises ``Unavailable`` (HTTP 503) when there is none: documents with a verification QR code
    cannot be signed until an operator runs ``kyso ca init`` (which adds a missing seal certificate).
    """
    row = _current_service(session, QR_SEAL_PROFILE, ca, now)
    if row is None:
        where = f" issued by CA {ca.name!r}" if ca is not None else ""
        raise Unavailable(f"kyso has no valid offline-seal (qr-seal) certificate{where} to sign verification QR "
                          "codes; run `kyso ca init` to add one", code="qr_seal_not_ready")
    return row


def _current_service(session: Session, profile: str, ca: CertificateAuthority | None,
                     now: dt.datetime | None) -> Certificate | None:
    """The newest valid, unexpired certificate of a service profile (TSA, offline seal) with its key here."""
    now = now or clock.now()
    query = select(Certificate).where(
        Certificate.profile == profile, Certificate.status == CertificateStatus.VALID, Certificate.key_ref.is_not(None),
        Certificate.not_before <= now, Certificate.not_after > now)
    if ca is not None:
        query = query.where(Certificate.ca_id == ca.id)
    return session.execute(query.order_by(Certificate.not_before.desc(), Certificate.id.desc()).limit(1)).scalar()


def qr_seal_certificates(session: Session) -> list[Certificate]:
    """Every offline-seal certificate kyso issued, current and past, oldest first (printed copies keep old seals)."""
    query = select(Certificate).where(Certificate.profile == QR_SEAL_PROFILE)
    return list(session.execute(query.order_by(Certificate.not_before, Certificate.id)).scalars())


def get_credential(session: Session, credential_id: str) -> Credential:
    cred = session.get(Credential, credential_id)
    if cred is None:
        raise UnknownCredential(f"no signing credential {credential_id!r}")
    return cred


def credential_for(session: Session, cert: Certificate) -> Credential | None:
    return session.execute(select(Credential).where(Credential.certificate_id == cert.id)).scalar_one_or_none()


def credential_ids(session: Session, certs: Sequence[Certificate]) -> dict[int, str]:
    """The signing credential of each certificate, by certificate row id, in one query: the credential
    whose current certificate it is, else the one holding its key (an earlier certificate of a credential
    renewed with the same key). Certificates with no credential in kyso (an imported or external key,
    a CA or service certificate) are absent."""
    if not certs:
        return {}
    ids = [c.id for c in certs]
    refs = [c.key_ref for c in certs if c.key_ref]
    rows = session.execute(select(Credential.id, Credential.certificate_id, Credential.key_ref).where(
        or_(Credential.certificate_id.in_(ids), Credential.key_ref.in_(refs)))).all()
    by_cert = {cert_id: cred for cred, cert_id, _ in rows if cert_id is not None}
    by_key = {key_ref: cred for cred, _, key_ref in rows}
    found: dict[int, str] = {}
    for cert in certs:
        cred = by_cert.get(cert.id) or (by_key.get(cert.key_ref) if cert.key_ref else None)
        if cred is not None:
            found[cert.id] = cred
    return found


@dataclass(frozen=True)
class CertificateFilter:
    subject: str | None = None
    commune_code: str | None = None
    province_code: str | None = None
    status: str | None = None  # valid | revoked | on_hold | expired
    profile: str | None = None
    ca: str | None = None
    expires_before: dt.datetime | None = None
    limit: int = 100
    offset: int = 0
    communes: frozenset[str] | None = None  # a scoped reader: these communes' certificates and those of none


def list_certificates(session: Session, flt: CertificateFilter, now: dt.datetime) -> tuple[list[Certificate], int]:
    query = select(Certificate)
    if flt.communes is not None:
        query = query.where(or_(Certificate.commune_code.in_(sorted(flt.communes)), Certificate.commune_code.is_(None)))
    if flt.subject:
        query = query.where(Certificate.subject.ilike(f"%{flt.subject}%"))
    if flt.commune_code:
        query = query.where(Certificate.commune_code == flt.commune_code)
    if flt.province_code:
        query = query.where(Certificate.province_code == flt.province_code)
    if flt.status == "expired":
        query = query.where(Certificate.not_after <= now)
    elif flt.status == "valid":
        query = query.where(Certificate.status == CertificateStatus.VALID, Certificate.not_after > now)
    elif flt.status:
        query = query.where(Certificate.status == flt.status)
    if flt.profile:
        query = query.where(Certificate.profile == flt.profile)
    if flt.ca:
        query = query.where(Certificate.ca_id == get_ca(session, flt.ca).id)
    if flt.expires_before:
        query = query.where(Certificate.not_after < flt.expires_before)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(Certificate.id.desc()).limit(flt.limit).offset(flt.offset)).scalars().all()
    return list(rows), total
