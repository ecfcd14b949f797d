"""Bearer tokens for ``/api/v1``: random, shown once, stored only as a SHA-256 hash."""
from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit, clock
from core.db import Base, UTCDateTime
from core.errors import Conflict, InvalidInput, NotFound, Unauthenticated

PREFIX = "kyso_"


class Role(str, enum.Enum):
    ca_operator = "ca-operator"
    auditor = "auditor"
    client = "client"


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


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and role (``actor`` in the audit log)."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, name: str, role: Role, actor: str) -> str:
    """A new token; the clear value is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a token name must be 1-100 characters")
    if session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none() is not None:
        raise Conflict(f"a token named {name!r} already exists; revoke it or choose another name")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role.value, token_hash=_hash(token), created_at=clock.now(), created_by=actor))
    audit.record(session, actor=actor, action="api:token:create", subject=name, role=role.value)
    return token


def revoke(session: Session, name: str, actor: str) -> None:
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        audit.record(session, actor=actor, action="api:token:revoke", subject=name)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.execute(select(ApiToken).order_by(ApiToken.id)).scalars())


def authenticate(session: Session, token: str) -> Principal:
    """The principal of a live token; every failure looks the same to the caller."""
    failure = Unauthenticated("missing, unknown or revoked bearer token; create one with `kyso token create`")
    if not token.startswith(PREFIX) or len(token) > 200:
        raise failure
    digest = _hash(token)
    row = session.execute(select(ApiToken).where(ApiToken.token_hash == digest)).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        raise failure
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):
        row.last_used_at = now  # coarse, so reads do not write on every request
    return Principal(row.name, Role(row.role))
