"""The registry of signed documents, their file versions, enrolled stamp images and idempotency records.

A document keeps its id for life (the QR code prints it); each signature, validation-data update
or archive timestamp appends a new file version, and every version's SHA-256 stays findable, so
a citizen holding any copy kyso handed out can be matched.
"""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


# closed sets of strings the ``String`` columns below hold (a StrEnum member is stored as, and equals, its value)
class DocumentStatus(StrEnum):
    VALID = "valid"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"


class UpgradeStatus(StrEnum):
    """Whether a document still has to reach the level asked for (``upgrade.py``)."""

    NONE = "none"
    PENDING = "pending"
    FAILED = "failed"


class SignedDocument(Base):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_commune_signed", "commune_code", "signed_at"),
        Index("ix_documents_upgrade_due", "upgrade_status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    document_type: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    commune_code: Mapped[str] = mapped_column(String(5), nullable=False)
    dossier_number: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    credential_id: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    signer_serial: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    signer_name: Mapped[str] = mapped_column(String(200), nullable=False)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    policy_version: Mapped[str] = mapped_column(String(40), nullable=False)
    level: Mapped[str] = mapped_column(String(8), nullable=False)  # current: B-B | B-T | B-LT | B-LTA
    requested_level: Mapped[str] = mapped_column(String(8), nullable=False)
    upgrade_status: Mapped[str] = mapped_column(String(16), nullable=False)  # UpgradeStatus
    upgrade_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # of the current version
    version: Mapped[int] = mapped_column(Integer, nullable=False)  # current version number
    signatures: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # DocumentStatus
    superseded_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_changed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    # the QR code's signed facts (offline_seal.py)
    offline_seal: Mapped[str | None] = mapped_column(Text, nullable=True)


class StorageKind(StrEnum):
    """How a version's bytes are kept (``versions.py``)."""

    WHOLE = "whole"  # the blob is the whole file
    DELTA = "delta"  # the blob is the tail kyso appended over the bytes whose SHA-256 is ``base_sha256``


class DocumentFile(Base):
    """One version of a signed document (kept: each was handed to someone). The bytes live in the blob
    store (``blobs.py``): whole, or as the tail kyso appended over its parent (``versions.py``)."""

    __tablename__ = "document_files"
    __table_args__ = (UniqueConstraint("document_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    change: Mapped[str] = mapped_column(String(16), nullable=False)  # signature | upgrade
    level: Mapped[str] = mapped_column(String(8), nullable=False)
    signer_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    storage: Mapped[str] = mapped_column(String(8), nullable=False)  # StorageKind
    blob_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    # DELTA only: the parent's SHA-256: an earlier version of the same document, or the caller's input
    base_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # for a signature: the signing policy version and the rule that allowed it; reception is
    # own-commune, province-wide (reception independent of administrative boundaries) or unbound
    policy_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    policy_rule: Mapped[str | None] = mapped_column(String(120), nullable=True)
    reception: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Blob(Base):
    """Content-addressed bytes of the database blob store (``blobs.py``): a whole file, an appended tail or a
    caller's input. ``created_at`` is refreshed whenever the same bytes are stored again, so the sweep of
    unreferenced blobs never takes one a transaction still in flight is about to reference."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class StampImage(Base):
    """A specialist's handwritten signature or an agency's seal, enrolled for a credential."""

    __tablename__ = "stamp_images"
    __table_args__ = (UniqueConstraint("credential_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(40), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # signature | seal
    png: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    enrolled_by: Mapped[str] = mapped_column(String(200), nullable=False)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class IdempotencyRecord(Base):
    """What a client's ``Idempotency-Key`` produced, committed with the registry records it names."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("client", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(200), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    request_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    result: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: document ids and per-item errors
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class SignatureRecord(Base):
    """One CMS signature value kyso's keys (or kyso's time-stamping) produced, so a file's registry record
    is found by the signatures in it rather than by the whole file's hash (``signature_records.py``).

    ``sha256`` hashes the SignerInfo's ``signature`` OCTET STRING (the raw signature bytes), which
    no byte outside the signed CMS can change. ``document_id`` and ``version`` are the version the
    value first appeared in; both are empty for CSC signHash, which signs a hash with no document."""

    __tablename__ = "signature_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"), nullable=True, index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # sign | timestamp | signhash
    signer_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)  # upper-case hex
    credential_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
