"""Every signing-policy version that was ever in force, kept by version, so a signature is always
judged by the rules it was made under (verification reports whether the signer was entitled)."""
from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache

from sqlalchemy import String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core import clock
from core.db import Base, UTCDateTime, transaction

from .documents import DocumentPolicy, parse


class PolicyVersion(Base):
    __tablename__ = "policy_versions"

    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    first_loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


def remember(sessions: sessionmaker[Session], policy: DocumentPolicy) -> None:
    """Record a version the first time any worker loads it (idempotent, race-safe)."""
    try:
        with transaction(sessions) as session:
            if session.get(PolicyVersion, policy.version) is None:
                session.add(PolicyVersion(version=policy.version, source=policy.source, first_loaded_at=clock.now(),
                                          sha256=hashlib.sha256(policy.source.encode()).hexdigest()))
    except IntegrityError:
        pass  # another worker recorded it at the same moment


def recorded(session: Session, version: str) -> DocumentPolicy | None:
    row = session.execute(select(PolicyVersion.source).where(PolicyVersion.version == version)).scalar_one_or_none()
    return None if row is None else _parsed(version, row)


@lru_cache(maxsize=32)
def _parsed(version: str, source: str) -> DocumentPolicy:  # noqa: ARG001 - the version is part of the key
    return parse(source.encode(), f"policy {version}")
