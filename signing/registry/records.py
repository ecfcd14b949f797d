"""Signature records: the registry is found by the signature, not by the file.

A file's bytes outside its signed ranges (the zero padding of ``/Contents``, a byte after
``%%EOF``) can change without touching any signature, so a whole-file hash loses a withdrawn
document the moment one padding digit changes. Every CMS signature value kyso produces — a
document signature (``sign``: /sign, batches, signing requests, CSC signDoc), a document
timestamp kyso adds (``timestamp``: B-LTA at signing, upgrades) and a raw CSC signHash value
(``signhash``, no document) — is recorded as the SHA-256 of its SignerInfo ``signature`` OCTET
STRING, in the transaction that registers it. The verifier reads the values from a file and looks
them up here: a value is inside the signed CMS, so it survives any change around it, and a
forger cannot make one without kyso's key.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import writing_connection
from signing.registry.models import SignatureRecord, SignedDocument

Source = Literal["sign", "timestamp", "signhash"]
_LOOKUP_CHUNK = 500  # values per IN (...) query
# both have ON CONFLICT DO NOTHING
_INSERTS: dict[str, Callable[[type[SignatureRecord]], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert, "sqlite": sqlite.insert}


def signature_digest(value: bytes) -> str:
    """The key a signature value is recorded under: lower-case hex SHA-256 of the raw signature bytes
    (``signer_info['signature'].native``), not of the CMS, which carries unsigned attributes."""
    return hashlib.sha256(value).hexdigest()


@dataclass(frozen=True)
class SignatureValue:
    """A signature value found in a PDF or produced by signHash, ready to be recorded."""

    value: bytes
    source: Source
    signer_serial: str | None  # upper-case hex, as pki.models.Certificate.serial


@lru_cache(maxsize=4)  # kept: one prepared statement per dialect, compiled once
def _insert_new(dialect: str) -> postgresql.Insert | sqlite.Insert | None:
    """An insert that leaves a value already recorded as it is, where the dialect has one."""
    insert = _INSERTS.get(dialect)
    return insert(SignatureRecord).on_conflict_do_nothing(index_elements=["sha256"]) if insert else None


def record(session: Session, values: Iterable[SignatureValue], *, created_at: dt.datetime,
           document_id: str | None = None, version: int | None = None, credential_id: str | None = None) -> None:
    """Record ``values`` in the caller's transaction; a value already recorded keeps its first record
    (a deterministic RSA PKCS#1 v1.5 signHash over the same hash gives the same value twice).

    ``credential_id`` is the signing credential's, kept on ``sign`` and ``signhash`` rows only
    (a document timestamp is the TSA's signature)."""
    rows: dict[str, dict[str, Any]] = {}
    for item in values:
        digest = signature_digest(item.value)
        rows.setdefault(digest, {
            "sha256": digest, "document_id": document_id, "version": version, "source": item.source,
            "signer_serial": item.signer_serial, "created_at": created_at,
            "credential_id": credential_id if item.source != "timestamp" else None,
        })
    if not rows:
        return
    session.flush()  # the document row the records point to goes first
    statement = _insert_new(session.get_bind().dialect.name)
    if statement is not None:
        writing_connection(session).execute(statement, list(rows.values()))
        return
    known = set(session.execute(select(SignatureRecord.sha256).where(SignatureRecord.sha256.in_(rows))).scalars())
    session.add_all(SignatureRecord(**row) for digest, row in rows.items() if digest not in known)


@dataclass(frozen=True)
class SignatureRecordRow:
    """A recorded signature value and, when it signed a document, that document's state now."""

    sha256: str
    source: Source
    signer_serial: str | None
    credential_id: str | None
    created_at: dt.datetime
    document_id: str | None  # None: a CSC signHash value
    version: int | None  # the document version the value first appeared in
    document_status: str | None  # valid | withdrawn | superseded
    document_version: int | None  # the document's current version
    superseded_by: str | None


def find_by_signatures(session: Session, values: Iterable[bytes]) -> dict[bytes, SignatureRecordRow]:
    """The records of those of ``values`` (raw signature values, ``signer_info['signature'].native``)
    kyso recorded, keyed by the value itself; values with no record are absent from the answer."""
    by_digest: dict[str, bytes] = {signature_digest(v): v for v in values}
    found: dict[bytes, SignatureRecordRow] = {}
    digests = sorted(by_digest)
    for start in range(0, len(digests), _LOOKUP_CHUNK):
        query = (select(SignatureRecord, SignedDocument.status, SignedDocument.version, SignedDocument.superseded_by)
                 .outerjoin(SignedDocument, SignedDocument.id == SignatureRecord.document_id)
                 .where(SignatureRecord.sha256.in_(digests[start:start + _LOOKUP_CHUNK])))
        for rec, status, current, superseded_by in session.execute(query):
            found[by_digest[rec.sha256]] = SignatureRecordRow(
                sha256=rec.sha256, source=rec.source, signer_serial=rec.signer_serial,  # type: ignore[arg-type]
                credential_id=rec.credential_id, created_at=rec.created_at, document_id=rec.document_id,
                version=rec.version, document_status=status, document_version=current, superseded_by=superseded_by)
    return found


def newest_record(session: Session, values: Sequence[bytes]) -> SignatureRecordRow | None:
    """The record of the last recorded value of ``values`` given in signing order (a file's newest kyso
    signature or timestamp), or None when none of them is kyso's."""
    found = find_by_signatures(session, values)
    return next((found[v] for v in reversed(values) if v in found), None)


__all__ = ["SignatureRecordRow", "SignatureValue", "find_by_signatures", "newest_record", "record",
           "signature_digest"]
