"""Append-only, hash-chained audit log.

Each entry's hash covers its own fields and the previous entry's hash, so editing, deleting or
reordering any row breaks the chain from that point. Entries are written in the caller's
transaction: a change and its audit entry commit together or not at all. A single-row head table
is locked while appending, so concurrent writers on PostgreSQL cannot fork the chain.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import clock, metrics
from .db import Base, UTCDateTime

GENESIS = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    details: Mapped[str] = mapped_column(Text, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditHead(Base):
    """The chain's tip, one row, locked by every appender."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


def _digest(seq: int, at: dt.datetime, actor: str, action: str, subject: str, details: str, prev: str) -> str:
    canonical = json.dumps(
        [seq, clock.aware(at).isoformat(), actor, action, subject, details, prev],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record(session: Session, *, actor: str, action: str, subject: str, **details: Any) -> AuditEntry:
    """Append one entry in ``session``'s transaction. ``action`` is tagged ``room:object:verb``."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    seq = head.seq + 1
    at = clock.now()
    body = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
    entry = AuditEntry(
        seq=seq, at=at, actor=actor, action=action, subject=subject, details=body, prev_hash=head.hash,
        hash=_digest(seq, at, actor, action, subject, body, head.hash),
    )
    session.add(entry)
    head.seq, head.hash = seq, entry.hash
    session.flush()
    metrics.AUDIT_ENTRIES.labels(action).inc()
    return entry


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None


def verify(session: Session) -> ChainReport:
    """Walk the chain; report the first entry whose hash, link or sequence does not hold."""
    prev, expected_seq, count = GENESIS, 1, 0
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    for entry in rows:
        count += 1
        if entry.seq != expected_seq:
            return ChainReport(False, count, expected_seq, f"entry {expected_seq} is missing (next found: {entry.seq})")
        if entry.prev_hash != prev:
            return ChainReport(False, count, entry.seq, "link to the previous entry is broken")
        actual = _digest(entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.details, entry.prev_hash)
        if actual != entry.hash:
            return ChainReport(False, count, entry.seq, "entry content does not match its hash (edited)")
        prev, expected_seq = entry.hash, expected_seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return ChainReport(False, count, expected_seq, "entries after this point were deleted (head mismatch)")
    return ChainReport(True, count)
