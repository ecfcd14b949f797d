"""Finish documents whose timestamp could not be had when they were signed (links drop; government
TSAs can take minutes).

A pending document is B-B (or B-LT waiting for its archive timestamp). Upgrading appends, in
order: a document timestamp (which makes the signature B-T, EN 319 142-1 §5.4), the DSS with
validation data for the signer and the TSA (B-LT), and for B-LTA an archive timestamp over all of
it. Signed bytes are never rewritten. Attempts back off exponentially and stop after
``KYSO_UPGRADE_MAX_ATTEMPTS``; the registry shows the outcome.

Several workers may run this at once: a document is claimed by pushing its ``next_attempt_at``
forward under a row lock (``SKIP LOCKED`` on PostgreSQL), and the result is only recorded if the
document did not change meanwhile.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging

from sqlalchemy import select

from core import audit, clock
from core.db import transaction
from signing import loop
from signing.create import pades
from signing.create.service import SigningService
from signing.errors import TimestampUnavailable
from signing.registry import records, versions
from signing.registry.blobs import store_for
from signing.registry.models import DocumentFile, SignedDocument, UpgradeStatus
from signing.verify import pdf_facts

log = logging.getLogger(__name__)
LEASE = dt.timedelta(minutes=5)


def _claim(service: SigningService, limit: int) -> list[str]:
    now = clock.now()
    with transaction(service.ctx.sessions) as session:
        query = (select(SignedDocument).where(SignedDocument.upgrade_status == UpgradeStatus.PENDING,
                                              SignedDocument.next_attempt_at <= now)
                 .order_by(SignedDocument.next_attempt_at).limit(limit).with_for_update(skip_locked=True))
        rows = session.execute(query).scalars().all()
        for row in rows:
            row.next_attempt_at = now + LEASE
        return [row.id for row in rows]


def upgrade_due(service: SigningService, limit: int = 50) -> dict[str, int]:
    """One pass over due documents; returns how many were upgraded, retried later, or given up."""
    done = {"upgraded": 0, "retry": 0, "failed": 0}
    for document_id in _claim(service, limit):
        done[upgrade_one(service, document_id)] += 1
    return done


def upgrade_one(service: SigningService, document_id: str) -> str:
    with transaction(service.ctx.sessions) as session:
        doc = session.get(SignedDocument, document_id)
        if doc is None or doc.upgrade_status != UpgradeStatus.PENDING:
            return "upgraded"
        current = session.execute(select(DocumentFile).where(DocumentFile.document_id == doc.id,
                                                             DocumentFile.version == doc.version)).scalar_one()
        pdf = versions.read(session, store_for(service.ctx.settings), current)
        level, target = doc.level, doc.requested_level
        sha, credential_id = doc.sha256, doc.credential_id
    try:
        new_pdf, reached = _raise_level(service, pdf, level, target, credential_id)
        timestamps = pdf_facts.signature_values(new_pdf, after=len(pdf))  # the document timestamps added
    except Exception as exc:  # noqa: BLE001 - recorded on the document, retried with backoff
        return _record_failure(service, document_id, sha, exc)
    return _record_upgrade(service, document_id, sha, level, reached, pdf, new_pdf, timestamps)


def _record_upgrade(service: SigningService, document_id: str, sha: str, level: str, reached: str, pdf: bytes,
                    new_pdf: bytes, timestamps: list[records.SignatureValue]) -> str:
    """One transaction: the new version (the bytes appended over ``pdf``), its timestamps' records, the audit
    entry; nothing when the document changed since ``sha`` was read."""
    digest = hashlib.sha256(new_pdf).hexdigest()
    with transaction(service.ctx.sessions) as session:
        doc = session.get(SignedDocument, document_id, with_for_update=True)
        if doc is None or doc.sha256 != sha:
            return "retry"  # signed again meanwhile; the next pass starts from the new version
        now = clock.now()
        doc.version += 1
        doc.sha256, doc.level = digest, reached
        doc.upgrade_status, doc.next_attempt_at, doc.last_error = UpgradeStatus.NONE, None, None
        blobs = store_for(service.ctx.settings)
        stored = versions.store(session, blobs, new_pdf, parent=pdf, parent_is_version=True, keep_input=False)
        session.add(DocumentFile(document_id=doc.id, version=doc.version, change="upgrade", level=reached,
                                 signer_serial=None, sha256=digest, size=len(new_pdf), created_at=now,
                                 **stored.columns()))
        session.flush()
        versions.rebase(session, blobs, doc.id)  # the final level: the caller's input, if kept, can go
        records.record(session, timestamps, created_at=now, document_id=doc.id, version=doc.version)
        audit.record(session, actor="system:upgrader", action="signing:document:upgrade", subject=doc.id,
                     level_from=level, level=reached, sha256=digest, version=doc.version)
    return "upgraded"


def _raise_level(service: SigningService, pdf: bytes, level: str, target: str, credential_id: str) -> tuple[bytes, str]:
    timestamper = service.timestamper()
    order = pades.LEVEL_ORDER
    reserve = service.ts_reserve()
    if order[level] < order["B-T"]:
        pdf = loop.run(pades.add_document_timestamp(pdf, timestamper, "sha256", reserve))
        level = "B-T"
    if order[target] >= order["B-LT"] and order[level] < order["B-LT"]:
        pdf = service.add_validation_data(pdf, service.material.signer(credential_id))
        level = "B-LT"
    if order[target] >= order["B-LTA"] and order[level] < order["B-LTA"]:
        pdf = loop.run(pades.add_document_timestamp(pdf, timestamper, "sha256", reserve))
        level = "B-LTA"
    return pdf, level


def _record_failure(service: SigningService, document_id: str, sha: str, exc: Exception) -> str:
    settings = service.ctx.settings
    with transaction(service.ctx.sessions) as session:
        doc = session.get(SignedDocument, document_id, with_for_update=True)
        if doc is None or doc.sha256 != sha:
            return "retry"
        doc.upgrade_attempts += 1
        doc.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if doc.upgrade_attempts >= settings.upgrade_max_attempts:
            doc.upgrade_status, doc.next_attempt_at = UpgradeStatus.FAILED, None
            audit.record(session, actor="system:upgrader", action="signing:document:upgrade-failed", subject=doc.id,
                         attempts=doc.upgrade_attempts, error=doc.last_error)
            log.error("document %s stays %s after %s attempts: %s", doc.id, doc.level, doc.upgrade_attempts, exc)
            return "failed"
        delay = settings.upgrade_backoff_seconds * 2 ** (doc.upgrade_attempts - 1)
        doc.next_attempt_at = clock.now() + dt.timedelta(seconds=delay)
    if not isinstance(exc, TimestampUnavailable):
        log.warning("upgrading document %s failed (%s); retrying in %.0fs", document_id, exc, delay)
    return "retry"
