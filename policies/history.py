"""Every signing-policy version that was ever in force, kept by version, so a signature is always
judged by the rules it was made under (verification reports whether the signer was entitled)."""
from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core import clock
from core.cache import Cache
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


def recorded(session: Session, version: str, known: Cache[str, DocumentPolicy] | None = None) -> DocumentPolicy | None:
    """A recorded version's rules. A version's text never changes: with ``known`` (a cache its caller
    owns, e.g. the verifier's) it is read and parsed once per process."""
    policy = known.get(version) if known is not None else None
    if policy is None:
        source = session.execute(select(PolicyVersion.source).where(PolicyVersion.version == version)
                                 ).scalar_one_or_none()
        if source is None:
            return None  # not cached: a worker may record it a moment later
        policy = parse(source.encode(), f"policy {version}")
        if known is not None:
            known.put(version, policy)
    return policy
