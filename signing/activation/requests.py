"""Signing requests: documents a client submitted for a specialist to approve on their own page.

Software that cannot collect the specialist's PIN and code (most civil-registration software today)
submits the PDFs with their signing metadata; they wait here, ``pending``, until the specialist
signs in to ``/me``, reviews them and approves with their PIN and a fresh code (which authorizes
exactly these documents' hashes) or rejects them. The client polls the request for the outcome.

Statuses: pending → approved (being signed) → signed | partly_signed | failed; pending → rejected
| expired. A request is claimed by one approval only (conditional update), and every item is signed
with an Idempotency-Key of its own, so an approval interrupted half-way signs nothing twice when
it is run again. Storage only: the API layer turns stored metadata into ``SignRequest``s.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import Conflict, NotFound
from signing.activation.models import ItemStatus, RequestStatus, SigningRequest, SigningRequestItem

REQUEST_TTL = dt.timedelta(hours=24)  # a dossier submitted in the morning is approved the same day
FINAL = (RequestStatus.SIGNED, RequestStatus.PARTLY_SIGNED, RequestStatus.FAILED, RequestStatus.REJECTED,
         RequestStatus.EXPIRED)


class UnknownSigningRequest(NotFound):
    code = "unknown_signing_request"


class SigningRequestClosed(Conflict):
    """Approving or rejecting a request that is no longer pending."""

    code = "signing_request_closed"




@dataclass(frozen=True)
class NewItem:
    filename: str | None
    metadata: dict[str, Any]
    pdf: bytes


def new_id() -> str:
    return "sr_" + secrets.token_urlsafe(15)


def submit(session: Session, credential_id: str, client: str, items: list[NewItem], note: str | None) -> SigningRequest:
    """Store a pending request (the caller validated every item and checked the client's scope)."""
    now = clock.now()
    row = SigningRequest(id=new_id(), credential_id=credential_id, client=client, status=RequestStatus.PENDING,
                         note=note, created_at=now, expires_at=now + REQUEST_TTL)
    session.add(row)
    for position, item in enumerate(items):
        session.add(SigningRequestItem(request_id=row.id, position=position, filename=item.filename,
                                       metadata_json=json.dumps(item.metadata, ensure_ascii=False), pdf=item.pdf,
                                       sha256=hashlib.sha256(item.pdf).hexdigest(), status=ItemStatus.PENDING))
    audit.record(session, actor=client, action="signing:request:submit", subject=row.id, credential=credential_id,
                 documents=[hashlib.sha256(i.pdf).hexdigest() for i in items])
    return row


def _expire(session: Session, row: SigningRequest) -> SigningRequest:
    """A pending request past its time reads (and is stored) as expired."""
    if row.status == RequestStatus.PENDING and clock.aware(row.expires_at) <= clock.now():
        row.status, row.decided_at = RequestStatus.EXPIRED, clock.now()
    return row


def get(session: Session, request_id: str, *, client: str | None = None, credential_id: str | None = None
        ) -> SigningRequest:
    """The request, as its submitting client or its specialist sees it; anyone else gets 'unknown'."""
    row = session.get(SigningRequest, request_id) if isinstance(request_id, str) else None
    if row is None or (client is not None and row.client != client) or \
            (credential_id is not None and row.credential_id != credential_id):
        raise UnknownSigningRequest(f"no signing request {request_id!r} of yours; check the id returned when "
                                    "it was submitted")
    return _expire(session, row)


def items(session: Session, request_id: str) -> list[SigningRequestItem]:
    return list(session.execute(select(SigningRequestItem).where(SigningRequestItem.request_id == request_id)
                                .order_by(SigningRequestItem.position)).scalars())


def pending_for(session: Session, credential_id: str) -> list[SigningRequest]:
    rows = session.execute(select(SigningRequest).where(SigningRequest.credential_id == credential_id,
                                                        SigningRequest.status == RequestStatus.PENDING)
                           .order_by(SigningRequest.created_at)).scalars().all()
    return [r for r in rows if _expire(session, r).status == RequestStatus.PENDING]


def claim(session: Session, request_id: str, credential_id: str, *, seen: list[str] | None = None) -> None:
    """pending → approved, for exactly one of two concurrent approvals. ``seen``: the SHA-256 of the documents
    whose every page the specialist confirmed she saw (her page), recorded with the approval."""
    now = clock.now()
    result = cast("CursorResult[Any]", session.execute(update(SigningRequest).where(
        SigningRequest.id == request_id, SigningRequest.credential_id == credential_id,
        SigningRequest.status == RequestStatus.PENDING, SigningRequest.expires_at > now)
        .values(status=RequestStatus.APPROVED, decided_at=now).execution_options(synchronize_session=False)))
    if result.rowcount != 1:
        raise SigningRequestClosed(f"signing request {request_id} is no longer waiting for approval")
    audit.record(session, actor=f"specialist:{credential_id}", action="signing:request:approve", subject=request_id,
                 **({"seen_every_page": seen} if seen is not None else {}))


def reject(session: Session, request_id: str, credential_id: str, reason: str | None) -> None:
    now = clock.now()
    result = cast("CursorResult[Any]", session.execute(update(SigningRequest).where(
        SigningRequest.id == request_id, SigningRequest.credential_id == credential_id,
        SigningRequest.status == RequestStatus.PENDING)
        .values(status=RequestStatus.REJECTED, decided_at=now, reason=reason)
        .execution_options(synchronize_session=False)))
    if result.rowcount != 1:
        raise SigningRequestClosed(f"signing request {request_id} is no longer waiting for approval")
    audit.record(session, actor=f"specialist:{credential_id}", action="signing:request:reject", subject=request_id,
                 reason=reason)


def record_item(session: Session, request_id: str, position: int, *, document_id: str | None = None,
                error: dict[str, Any] | None = None) -> None:
    item = session.get(SigningRequestItem, (request_id, position))
    if item is None:
        raise UnknownSigningRequest(f"signing request {request_id} has no item {position}")
    item.status = ItemStatus.SIGNED if document_id else ItemStatus.FAILED
    item.document_id, item.error = document_id, json.dumps(error, ensure_ascii=False) if error else None


def finish(session: Session, request_id: str) -> SigningRequest:
    row = session.get(SigningRequest, request_id)
    if row is None:
        raise UnknownSigningRequest(f"no signing request {request_id!r}")
    states = {i.status for i in items(session, request_id)}
    row.status = (RequestStatus.SIGNED if states == {ItemStatus.SIGNED} else RequestStatus.FAILED
                  if ItemStatus.SIGNED not in states else RequestStatus.PARTLY_SIGNED)
    return row
