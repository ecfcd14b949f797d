"""How a document's versions are stored, rebuilt and pruned: what is new, and what matters.

Every kyso signature, validation-data update and archive timestamp is an incremental update, so version
N is its parent's bytes followed by what kyso appended. A ``document_files`` row says how its bytes are
kept (``StorageKind``):

``delta``
    ``blob_sha256`` names the appended tail; ``base_sha256`` names the parent: an earlier version of the
    same document, or, for the first version only, the caller's input (the bytes kyso signed: those
    received, or their repaired copy), stored as a blob of its own.
``whole``
    ``blob_sha256`` names the whole file (the rows migrated from before this layout, a first version
    whose input is not kept, and any output that does not start with its parent's bytes).

The input is kept only while it matters: while the document is below the level it was asked for
(the upgrade still builds on it) and at most ``KYSO_INPUT_RETENTION_DAYS`` after signing. Then the
document is *rebased*: its first version is stored whole and stops referencing the input, which the
next ``kyso doc gc`` removes. Later versions are deltas over versions, never over the input, so every
version ever handed out stays rebuildable byte for byte, with or without the input. The input itself
was never handed out by kyso; once dropped it is gone (its SHA-256 stays in the audit log).

Rebuilding reads the version's chain (one query for the rows, one blob read per link) and checks the
SHA-256 of every version on the way; a missing or altered blob raises ``StoredFileDamaged``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from core import clock
from core.db import transaction
from core.settings import Settings
from signing.errors import StoredFileDamaged
from signing.registry.blobs import BlobStore, store_for
from signing.registry.models import DocumentFile, SignedDocument, StorageKind, UpgradeStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    """Where a version's bytes went: the ``document_files`` columns to set."""

    storage: StorageKind
    blob_sha256: str
    base_sha256: str | None = None

    def columns(self) -> dict[str, str | None]:
        return {"storage": self.storage, "blob_sha256": self.blob_sha256, "base_sha256": self.base_sha256}


def store(session: Session, blobs: BlobStore, pdf: bytes, *, parent: bytes | None, parent_is_version: bool,
          keep_input: bool, pdf_sha256: str | None = None, parent_sha256: str | None = None) -> Stored:
    """Store a new version ``pdf`` appended over ``parent`` (None: no parent) in the caller's transaction.

    ``parent_is_version``: the parent is a stored version of the same document, so only the tail is new.
    Otherwise the parent is the caller's input, kept (as a blob of its own) only with ``keep_input``.
    ``pdf_sha256``, ``parent_sha256``: digests the caller already computed over exactly those bytes."""
    appended = parent is not None and len(pdf) > len(parent) and pdf.startswith(parent)
    if parent is not None and appended and (parent_is_version or keep_input):
        if parent_is_version:
            base = parent_sha256 or hashlib.sha256(parent).hexdigest()
        else:
            base = blobs.put(session, parent, sha256=parent_sha256)
        return Stored(StorageKind.DELTA, blobs.put(session, pdf[len(parent):]), base)
    return Stored(StorageKind.WHOLE, blobs.put(session, pdf, sha256=pdf_sha256))


def read(session: Session, blobs: BlobStore, row: DocumentFile) -> bytes:
    """The bytes of version ``row``, rebuilt from its chain and checked against every SHA-256 recorded."""
    rows = {r.version: r for r in session.execute(
        select(DocumentFile).where(DocumentFile.document_id == row.document_id,
                                   DocumentFile.version <= row.version)).scalars()}
    chain = [row]
    while chain[-1].storage == StorageKind.DELTA:
        parent = _parent(chain[-1], rows)
        if parent is None:
            break
        chain.append(parent)
    try:
        buffer = bytearray()
        hasher = hashlib.sha256()
        first = chain[-1]
        if first.storage == StorageKind.DELTA:  # over the caller's input
            _extend(buffer, hasher, blobs.get(session, first.base_sha256 or ""))
        elif first.storage != StorageKind.WHOLE:
            raise StoredFileDamaged(f"unknown storage kind {first.storage!r}", blob=first.blob_sha256)
        for link in reversed(chain):
            _extend(buffer, hasher, blobs.get(session, link.blob_sha256))
            if hasher.copy().hexdigest() != link.sha256:
                raise StoredFileDamaged(f"version {link.version} rebuilt from its blobs does not hash to the "
                                        f"SHA-256 the registry recorded ({link.sha256})", blob=link.blob_sha256)
    except StoredFileDamaged as exc:
        raise StoredFileDamaged(f"document {row.document_id} version {row.version} cannot be rebuilt byte for "
                                f"byte: {exc.message}; restore the blob store from a backup",
                                document_id=row.document_id, version=row.version, **exc.details) from None
    return bytes(buffer)


def _parent(row: DocumentFile, rows: dict[int, DocumentFile]) -> DocumentFile | None:
    """The earlier version ``row`` was appended to, or None when its base is the caller's input."""
    return next((r for v, r in sorted(rows.items(), reverse=True)
                 if v < row.version and r.sha256 == row.base_sha256), None)


def _extend(buffer: bytearray, hasher: hashlib._Hash, data: bytes) -> None:
    buffer.extend(data)
    hasher.update(data)


def rebase(session: Session, blobs: BlobStore, document_id: str) -> int:
    """Store whole every version of the document stored over the caller's input, so the input can go;
    returns how many versions were rewritten (their bytes and SHA-256 do not change)."""
    rows = {r.version: r for r in session.execute(
        select(DocumentFile).where(DocumentFile.document_id == document_id)).scalars()}
    changed = 0
    for row in sorted(rows.values(), key=lambda r: r.version):
        if row.storage == StorageKind.DELTA and _parent(row, rows) is None:
            pdf = read(session, blobs, row)
            row.storage, row.blob_sha256, row.base_sha256 = StorageKind.WHOLE, blobs.put(session, pdf), None
            changed += 1
    return changed


def referenced(session: Session, names: list[str]) -> set[str]:
    """Which of the blob ``names`` a document version still needs."""
    used = set(session.execute(select(DocumentFile.blob_sha256).where(DocumentFile.blob_sha256.in_(names))).scalars())
    used |= {n for n in session.execute(select(DocumentFile.base_sha256).where(DocumentFile.base_sha256.in_(names))
                                        ).scalars() if n}
    return used


def over_input(session: Session, *, signed_before: dt.datetime, after: str = "", limit: int = 1000) -> list[str]:
    """Documents (by id, after ``after``) that still keep their caller's input although they reached their
    final level or were signed at or before ``signed_before`` (the retention period)."""
    parent = aliased(DocumentFile)
    has_parent = exists().where(parent.document_id == DocumentFile.document_id,
                                parent.sha256 == DocumentFile.base_sha256, parent.version < DocumentFile.version)
    done = (SignedDocument.upgrade_status != UpgradeStatus.PENDING) | (SignedDocument.signed_at <= signed_before)
    query = (select(DocumentFile.document_id).join(SignedDocument, SignedDocument.id == DocumentFile.document_id)
             .where(DocumentFile.storage == StorageKind.DELTA, ~has_parent, done, DocumentFile.document_id > after)
             .distinct().order_by(DocumentFile.document_id).limit(limit))
    return list(session.execute(query).scalars())


@dataclass(frozen=True)
class Collected:
    rebased: int  # documents whose input was dropped (their first version now stored whole)
    removed: int  # blobs deleted: inputs no longer needed, orphans of failed commits
    damaged: tuple[str, ...] = ()  # documents that could not be rebased (``StoredFileDamaged``): left as they are


def collect(sessions: sessionmaker[Session], settings: Settings, *, page: int = 100) -> Collected:
    """``kyso doc gc``: drop inputs past retention (one transaction per document, under its row lock, as
    a signing or an upgrade takes it), then delete blobs nothing references that are older than
    ``KYSO_BLOB_GC_GRACE_HOURS`` (a failed commit's orphan files, dropped inputs). A document whose blobs
    are damaged is named in the answer and left as it is."""
    blobs = store_for(settings)
    now = clock.now()
    cutoff = now - dt.timedelta(days=settings.input_retention_days)
    rebased, damaged, last = 0, [], ""
    while True:
        with transaction(sessions, read_only=True) as session:
            due = over_input(session, signed_before=cutoff, after=last, limit=page)
        for document_id in due:
            try:
                with transaction(sessions) as session:
                    session.get(SignedDocument, document_id, with_for_update=True)
                    rebased += 1 if rebase(session, blobs, document_id) else 0
            except StoredFileDamaged as exc:
                log.error("kyso doc gc: %s", exc.message)
                damaged.append(document_id)
        if len(due) < page:
            break
        last = due[-1]
    with transaction(sessions) as session:
        removed = blobs.sweep(session, now - dt.timedelta(hours=settings.blob_gc_grace_hours), referenced)
    return Collected(rebased=rebased, removed=removed, damaged=tuple(damaged))


__all__ = ["Collected", "Stored", "collect", "read", "rebase", "referenced", "store"]
