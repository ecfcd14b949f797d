"""Tables of the certificate store. Rows are the source of truth for CRLs and OCSP."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, UTCDateTime


# closed sets of strings the ``String`` columns below hold (a StrEnum member is stored as, and equals, its value)
class CaStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # awaiting its certificate (a subordinate CA's CSR)
    REVOKED = "revoked"


class CertificateStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    ON_HOLD = "on_hold"


class CredentialStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # RA mode: awaiting the external CA's certificate
    RETIRED = "retired"
    DESTROYED = "destroyed"


class CertificateAuthority(Base):
    __tablename__ = "cas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # root | issuing
    mode: Mapped[str] = mapped_column(String(16), nullable=False)  # own | subordinate | external
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # CaStatus
    profile: Mapped[str] = mapped_column(String(40), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("cas.id"), nullable=True)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    key_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    cert_der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    csr_der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    chain_pem: Mapped[str | None] = mapped_column(Text, nullable=True)  # external issuers above it
    next_crl_number: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    ocsp_responder_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class Certificate(Base):
    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("ca_id", "serial"),
        Index("ix_certificates_ca_status_changed", "ca_id", "status_changed_at"),
        Index("ix_certificates_commune_status", "commune_code", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), nullable=False, index=True)  # upper-case hex
    ca_id: Mapped[int] = mapped_column(ForeignKey("cas.id"), nullable=False)
    profile: Mapped[str] = mapped_column(String(40), nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    common_name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    commune_code: Mapped[str | None] = mapped_column(String(5), nullable=True)
    province_code: Mapped[str | None] = mapped_column(String(2), nullable=True)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # CertificateStatus
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # RFC 5280 5.3.2: when the key is known or suspected to have been compromised (or the certificate
    # otherwise became invalid), at or before revoked_at; on CRL entries and OCSP singleExtensions.
    invalidity_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    key_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    replaces_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    issued_by: Mapped[str] = mapped_column(String(200), nullable=False)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    external: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    ca: Mapped[CertificateAuthority] = relationship(lazy="joined", innerjoin=True)


class Credential(Base):
    """A signing key in a keystore bound to its current certificate; signing requests name it."""

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_ref: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # CredentialStatus
    csr_der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # RA mode: awaiting the external CA
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    certificate: Mapped[Certificate | None] = relationship(lazy="joined")


class Crl(Base):
    __tablename__ = "crls"
    __table_args__ = (UniqueConstraint("ca_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ca_id: Mapped[int] = mapped_column(ForeignKey("cas.id"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    is_delta: Mapped[bool] = mapped_column(Boolean, nullable=False)
    base_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    entries: Mapped[int] = mapped_column(Integer, nullable=False)
    der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class OcspResponse(Base):
    """A pre-produced, signed OCSP response per certificate (RFC 5019), refreshed on change."""

    __tablename__ = "ocsp_responses"
    __table_args__ = (UniqueConstraint("ca_id", "serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ca_id: Mapped[int] = mapped_column(ForeignKey("cas.id"), nullable=False)
    serial: Mapped[str] = mapped_column(String(64), nullable=False)
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    cert_status: Mapped[str] = mapped_column(String(16), nullable=False)  # good | revoked
    der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class IssuanceIdempotency(Base):
    """What a client's ``Idempotency-Key`` on certificate issuance produced, committed with the certificate."""

    __tablename__ = "issuance_idempotency"
    __table_args__ = (UniqueConstraint("client", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(200), nullable=False)  # the actor that sent the key
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    request_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    serial: Mapped[str] = mapped_column(String(64), nullable=False)  # the certificate issued
    credential_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # with a generated key
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class PendingApproval(Base):
    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str] = mapped_column(String(100), nullable=False)
    params: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # ApprovalStatus
    requested_by: Mapped[str] = mapped_column(String(200), nullable=False)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
