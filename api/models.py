"""Tables of the doors: client tokens, the TLS client certificates bound to them, and the rate-limit buckets
shared by every worker process and node."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # scope: JSON lists, NULL = every value (rows from before scopes existed have NULL everywhere)
    scope_units: Mapped[str | None] = mapped_column(Text, nullable=True)
    scope_operations: Mapped[str | None] = mapped_column(Text, nullable=True)
    scope_document_types: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # rotation: the secret before the last rotation, accepted until previous_valid_until
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    previous_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True, nullable=True)
    previous_valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TokenCertificate(Base):
    """A TLS client certificate (profile ``api-client``, issued by kyso from the client's CSR) bound to a
    client token: presented through a trusted proxy, it authenticates as that token (``api/mtls.py``).
    The token's scope, expiry and revocation apply; so do the certificate's own status and validity."""

    __tablename__ = "token_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), nullable=False, index=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), unique=True, nullable=False)
    serial: Mapped[str] = mapped_column(String(64), nullable=False)  # upper-case hex, as in certificates
    sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)  # of the DER: the lookup key
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)


class RateLimitBucket(Base):
    """One token bucket of an open route's rate limit (api/ratelimit.py): ``key`` is a hash of the scope and
    the client address (the table never stores an address); ``tokens`` left at ``updated`` (Unix seconds);
    ``granted`` says whether the last request taken from it was let through."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, nullable=False)
    updated: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False)
