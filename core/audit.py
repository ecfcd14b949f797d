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

from sqlalchemy import BigInteger, Integer, String, Text, bindparam, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import clock, metrics
from .db import Base, UTCDateTime, writing_connection

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


# Prepared once: executed with parameters, a statement is compiled once per engine and found in
# SQLAlchemy's cache by identity; ``insert(...).values(...)`` or an ORM flush compiles afresh each time
# (~200 µs against ~40 µs per statement, measured). Every audited operation runs these three.
_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == bindparam("id")).with_for_update()
_NEW_HEAD = insert(AuditHead)
_APPEND = insert(AuditEntry)
_ADVANCE = update(AuditHead).where(AuditHead.id == bindparam("head_id")).values(
    seq=bindparam("new_seq"), hash=bindparam("new_hash"))


def record(session: Session, *, actor: str, action: str, subject: str, **details: Any) -> AuditEntry:
    """Append one entry in ``session``'s transaction. ``action`` is tagged ``room:object:verb``.

    The entry is written at once (not at the next flush), after the head row is locked; the entry returned
    is a detached copy of what was written."""
    connection = writing_connection(session)
    head = connection.execute(_HEAD, {"id": 1}).one_or_none()
    if head is None:
        connection.execute(_NEW_HEAD, [{"id": 1, "seq": 0, "hash": GENESIS}])
        prev_seq, prev_hash = 0, GENESIS
    else:
        prev_seq, prev_hash = head
    seq = prev_seq + 1
    at = clock.now()
    body = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
    digest = _digest(seq, at, actor, action, subject, body, prev_hash)
    row = {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "details": body,
           "prev_hash": prev_hash, "hash": digest}
    connection.execute(_APPEND, [row])
    connection.execute(_ADVANCE, {"head_id": 1, "new_seq": seq, "new_hash": digest})
    metrics.AUDIT_ENTRIES.labels(action).inc()
    return AuditEntry(**row)


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


# -- reading the log: list, show, export, and re-verifying an export offline -----------------------------
@dataclass(frozen=True)
class AuditFilter:
    """Which entries to read. Times are inclusive-exclusive (``since`` <= at < ``until``); ``actor`` and
    ``action`` match exactly or, ending in ``*``, by prefix (``pki:*``); ``subject`` matches exactly or by
    prefix ending in ``*``; ``after_seq`` pages (the next page starts after the last seq seen)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    actor: str | None = None
    action: str | None = None
    subject: str | None = None
    after_seq: int = 0
    limit: int | None = 100


def _match(column: Any, value: str) -> Any:
    if value.endswith("*"):
        prefix = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(prefix + "%", escape="\\")
    return column == value


def entries(session: Session, where: AuditFilter) -> list[AuditEntry]:
    """Entries matching ``where``, oldest first (by seq)."""
    query = select(AuditEntry).where(AuditEntry.seq > where.after_seq).order_by(AuditEntry.seq)
    if where.since is not None:
        query = query.where(AuditEntry.at >= where.since)
    if where.until is not None:
        query = query.where(AuditEntry.at < where.until)
    for column, value in ((AuditEntry.actor, where.actor), (AuditEntry.action, where.action),
                          (AuditEntry.subject, where.subject)):
        if value:
            query = query.where(_match(column, value))
    if where.limit is not None:
        query = query.limit(where.limit)
    return list(session.execute(query).scalars())


def entry(session: Session, seq: int) -> AuditEntry | None:
    return session.execute(select(AuditEntry).where(AuditEntry.seq == seq)).scalar_one_or_none()


def as_dict(row: AuditEntry) -> dict[str, Any]:
    """One entry as exported: every field the hash covers, as stored (``details`` is the exact JSON text
    that was hashed; ``details_parsed`` is the same, readable), and ``at`` as the ISO 8601 text hashed."""
    try:
        parsed: Any = json.loads(row.details)
    except ValueError:
        parsed = None
    return {"seq": row.seq, "at": clock.aware(row.at).isoformat(), "actor": row.actor, "action": row.action,
            "subject": row.subject, "details": row.details, "details_parsed": parsed,
            "prev_hash": row.prev_hash, "hash": row.hash}


def export_lines(session: Session, where: AuditFilter) -> Any:
    """JSON lines (UTF-8, no ``\\u`` escapes), one entry a line, oldest first, in pages of 1000 rows."""
    after = where.after_seq
    while True:
        page = entries(session, AuditFilter(where.since, where.until, where.actor, where.action, where.subject,
                                            after_seq=after, limit=1000))
        for row in page:
            yield json.dumps(as_dict(row), ensure_ascii=False, separators=(",", ":")) + "\n"
        if len(page) < 1000:
            return
        after = page[-1].seq


def verify_export(lines: Any, *, complete: bool = True) -> ChainReport:
    """Re-verify an export without the database: each line's hash over its own fields and its ``prev_hash``,
    and, between consecutive lines, the link (``prev_hash`` = the previous line's ``hash``).

    ``complete`` (a full export, ``kyso audit export`` without filters): it must start at seq 1 from the
    genesis hash and have no gaps, so a deleted line fails. Otherwise (a filtered export) gaps are allowed:
    each entry's own hash still proves its content and every unbroken run of seqs is linked."""
    prev_seq: int | None = None
    prev_hash: str | None = None
    count, gaps = 0, 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        count += 1
        try:
            item = json.loads(line)
            seq, at = int(item["seq"]), dt.datetime.fromisoformat(item["at"])
            fields = (item["actor"], item["action"], item["subject"], item["details"], item["prev_hash"])
            stated = item["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            return ChainReport(False, count, None, f"line {number} is not an audit entry ({exc})")
        if _digest(seq, at, *fields) != stated:
            return ChainReport(False, count, seq, "entry content does not match its hash (edited)")
        if prev_seq is None:
            if complete and seq != 1:
                return ChainReport(False, count, 1, f"entries before seq {seq} are missing (not a full export)")
            if seq == 1 and item["prev_hash"] != GENESIS:
                return ChainReport(False, count, seq, "the first entry does not start from the genesis hash")
        elif seq <= prev_seq:
            return ChainReport(False, count, seq, f"entries out of order (seq {seq} after {prev_seq})")
        elif seq == prev_seq + 1:
            if item["prev_hash"] != prev_hash:
                return ChainReport(False, count, seq, "link to the previous entry is broken")
        elif complete:
            return ChainReport(False, count, prev_seq + 1, f"entry {prev_seq + 1} is missing (next found: {seq})")
        else:
            gaps += 1
        prev_seq, prev_hash = seq, stated
    if count == 0:
        return ChainReport(False, 0, None, "the export holds no entries")
    return ChainReport(True, count, None, None if not gaps else
                       f"{gaps} gap(s) in seq (a filtered export): each entry's hash holds, runs are linked")
