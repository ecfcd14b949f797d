"""What each logged event says, and the one call that queues it in the event's own transaction.

``record(session, entry)`` is an INSERT into ``log_pending``: no shared row, no lock, so an event
and its log entry commit together or not at all and signing never waits for the sequencer.

Only public facts are logged: hashes, serials, codes, profile and document type names, times.
A certificate's subject (the holder's name and CCCD number) is not: its holder, or anyone shown
the certificate, finds the entry by the SHA-256 of its DER.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session

from core import clock
from core.db import writing_connection

from .entry import Entry, EntryType
from .models import LogPending

_QUEUE = insert(LogPending)  # prepared: compiled once, not at every flush


def record(session: Session, entry: Entry, *, document_id: str | None = None) -> None:
    """Queue ``entry`` for the log inside the caller's transaction."""
    writing_connection(session).execute(_QUEUE, {
        "entry": entry.encode(), "type": entry.type.value, "commune_code": entry.commune,
        "document_id": document_id, "created_at": clock.now()})


def certificate_issued(*, der: bytes, serial: str, issuer: str, profile: str, commune: str | None,
                       not_before: dt.datetime, not_after: dt.datetime, at: dt.datetime) -> Entry:
    return Entry.build(EntryType.CERTIFICATE_ISSUED, time=at, serial=serial, issuer=issuer,
                       certificate_sha256=hashlib.sha256(der).hexdigest(), profile=profile, commune=commune,
                       not_before=clock.aware(not_before), not_after=clock.aware(not_after))


def certificate_revoked(*, der: bytes, serial: str, issuer: str, reason: str, commune: str | None,
                        at: dt.datetime) -> Entry:
    return Entry.build(EntryType.CERTIFICATE_REVOKED, time=at, serial=serial, issuer=issuer,
                       certificate_sha256=hashlib.sha256(der).hexdigest(), reason=reason, commune=commune)


def document_registered(*, document_id: str, version: int, file_sha256: str, signature_sha256: Sequence[str],
                        signer_der: bytes, signer_serial: str, document_type: str, commune: str,
                        at: dt.datetime) -> Entry:
    return Entry.build(EntryType.DOCUMENT_REGISTERED, time=at, document=document_id, version=version,
                       file_sha256=file_sha256, signature_sha256=list(signature_sha256),
                       signer_sha256=hashlib.sha256(signer_der).hexdigest(), signer_serial=signer_serial,
                       document_type=document_type, commune=commune)


def document_withdrawn(*, document_id: str, version: int, commune: str, at: dt.datetime) -> Entry:
    return Entry.build(EntryType.DOCUMENT_WITHDRAWN, time=at, document=document_id, version=version, commune=commune)


def document_superseded(*, document_id: str, version: int, by: str, commune: str, at: dt.datetime) -> Entry:
    return Entry.build(EntryType.DOCUMENT_SUPERSEDED, time=at, document=document_id, version=version,
                       superseded_by=by, commune=commune)


def audit_anchor(*, seq: int, head: str, at: dt.datetime) -> Entry:
    return Entry.build(EntryType.AUDIT_ANCHOR, time=at, audit_sequence=seq, audit_head=head)
