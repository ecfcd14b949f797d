"""Tables of signature activation: a credential's factors (PIN hash, sealed TOTP secret, lockout),
the one-time enrolment codes operators hand out, the specialist's sign-in names and page sessions,
the failed-attempt throttle, the SADs issued against the factors, the raw signatures CSC signHash made
with them, and signing requests waiting for a specialist."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


# closed sets of strings the ``String`` columns below hold (a StrEnum member is stored as, and equals, its value)
class ActivationState(StrEnum):
    """A credential's factors: the column holds PENDING or ACTIVE; the status shown also says NONE (no
    factors enrolled) and LOCKED (too many wrong attempts)."""

    NONE = "none"
    PENDING = "pending"
    ACTIVE = "active"
    LOCKED = "locked"


class SADPurpose(StrEnum):
    """What a SAD was authorized for, and the only door that spends it: DOCUMENTS are whole PDFs kyso signs
    and registers (REST /sign and /sign/batch, signing requests approved on /me, CSC signDoc), bound to each
    document's SHA-256; HASH is CSC signatures/signHash, raw signatures over hashes the client computed."""

    DOCUMENTS = "documents"
    HASH = "hash"


class RequestStatus(StrEnum):
    """A signing request: PENDING until the specialist decides or it expires; then its items' outcome."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SIGNED = "signed"
    PARTLY_SIGNED = "partly_signed"
    FAILED = "failed"


class ItemStatus(StrEnum):
    PENDING = "pending"
    SIGNED = "signed"
    FAILED = "failed"


class ActivationData(Base):
    """A credential's PIN hash and sealed TOTP secret, and its lockout state."""

    __tablename__ = "activation_data"

    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # ActivationState.PENDING (not confirmed) | ACTIVE
    pin_kdf: Mapped[str] = mapped_column(String(40), nullable=False)
    pin_salt: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    pin_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    totp_secret: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # AES-GCM sealed
    last_otp_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    enrolled_by: Mapped[str] = mapped_column(String(200), nullable=False)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pin_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EnrolmentCode(Base):
    """A one-time enrolment code (stored as its SHA-256 only). The operator issues it; the specialist
    redeems it on /me/enrol, choosing her PIN (kept here, hashed, with the new sealed TOTP secret until
    she confirms a first code); only the confirmation replaces the credential's factors."""

    __tablename__ = "enrolment_codes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 (hex) of the normalised code
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), nullable=False, index=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)  # EnrolmentPurpose
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # PIN chosen, secret shown
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # confirmed: factors replaced
    void_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # a newer code replaced it
    pin_salt: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    pin_hash: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # AES-GCM sealed


class EnrolmentPurpose(StrEnum):
    ENROL = "enrol"  # no factors yet
    REENROL = "reenrol"  # lost phone or forgotten PIN: new PIN and new authenticator


class SpecialistLogin(Base):
    """A short sign-in name an operator gives a specialist's credential (besides her CCCD number)."""

    __tablename__ = "specialist_logins"

    username: Mapped[str] = mapped_column(String(32), primary_key=True)  # lower case
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), nullable=False, unique=True)
    set_by: Mapped[str] = mapped_column(String(200), nullable=False)
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class SpecialistSession(Base):
    """A signed-in /me page: the cookie holds a random token, this row its SHA-256. Revoked on logout,
    lock, PIN change and re-enrolment; refused once the credential is no longer active."""

    __tablename__ = "specialist_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 (hex) of the cookie token
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), nullable=False, index=True)
    person: Mapped[str] = mapped_column(String(80), nullable=False)  # throttle subject: cccd:… or cred:…
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_why: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ActivationThrottle(Base):
    """Failed PIN/code attempts per key (a person, a person from one address, one address), for the
    growing delays of NIST SP 800-63B 5.2.2; ``known`` marks a person+address pair that once succeeded."""

    __tablename__ = "activation_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    known: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class SignatureActivation(Base):
    """One SAD: its SHA-256, what it may sign, for whom, until when, and whether it was used."""

    __tablename__ = "signature_activations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 (hex) of the SAD token
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), nullable=False, index=True)
    principal: Mapped[str] = mapped_column(String(200), nullable=False)  # the client token's actor
    hash_algo: Mapped[str] = mapped_column(String(16), nullable=False)
    num_signatures: Mapped[int] = mapped_column(Integer, nullable=False)
    hashes: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list: SHA-256 (hex) of each bound hash
    authorized_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)  # kept across extensions
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_for: Mapped[str | None] = mapped_column(String(16), nullable=True)  # signed | extended
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)  # SADPurpose: the one door that spends it


class SignHashSignature(Base):
    """One raw signature CSC signatures/signHash made: which credential signed which hash, for which client
    token, when, under which SAD, and the SHA-256 of the signature value, the key under which the registry
    (``signature_records``, source ``signhash``) and the verifier find it."""

    __tablename__ = "signhash_signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), nullable=False, index=True)
    signer_serial: Mapped[str] = mapped_column(String(64), nullable=False)  # upper-case hex
    hash_algo: Mapped[str] = mapped_column(String(16), nullable=False)  # sha256 | sha384 | sha512
    hash: Mapped[str] = mapped_column(String(128), nullable=False)  # hex of the hash that was signed
    signature_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    client: Mapped[str] = mapped_column(String(200), nullable=False)  # the client token's actor
    sad_id: Mapped[str] = mapped_column(String(64), nullable=False)  # signature_activations.id of the SAD spent
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class SigningRequest(Base):
    __tablename__ = "signing_requests"
    __table_args__ = (Index("ix_signing_requests_credential_status", "credential_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id"), nullable=False)
    client: Mapped[str] = mapped_column(String(200), nullable=False, index=True)  # the submitting token's actor
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # RequestStatus
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)  # shown to the specialist
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)  # why rejected


class SigningRequestItem(Base):
    __tablename__ = "signing_request_items"

    request_id: Mapped[str] = mapped_column(ForeignKey("signing_requests.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metadata_json: Mapped[str] = mapped_column(Text, nullable=False)  # SignMetadata, without any SAD
    pdf: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # ItemStatus
    document_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON {code, message, status}
