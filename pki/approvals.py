"""Four eyes on destructive operations: one operator asks, a different operator approves, then it runs.

Destroying a private key (``destroy-key``) and revoking a CA (``revoke-ca``) cannot be undone, so
each waits as a pending approval until a second operator approves it. The approval expires after
``APPROVAL_HOURS``. The requester can never approve their own request: the same ``actor``, an
identity the doors authenticate (``token:<name>`` for a ca-operator token, on the REST API and on the
CLI alike), is refused. Every step is audited:
request, approval or rejection, and the operation itself. The operation runs in the approver's
transaction, so a failure leaves the request pending and changes nothing.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied

from . import ca_revocation
from .context import PkiContext
from .models import ApprovalStatus, CertificateStatus, Credential, CredentialStatus, PendingApproval
from .store import get_credential

APPROVAL_HOURS = 24




class ApprovalRequired(Conflict):
    code = "approval_required"


Params = dict[str, str]


def _no_params(params: Mapping[str, str]) -> Params:
    """Unknown options are refused, never ignored."""
    if params:
        raise InvalidInput(f"this operation takes no parameters, got {sorted(params)}")
    return {}


@dataclass(frozen=True)
class Operation:
    check: Callable[[Session, str, Params], None]  # refuses an impossible request before anyone is asked
    # (ctx, session, subject, params, actor) → result
    run: Callable[[PkiContext, Session, str, Params, str], dict[str, Any]]
    params: Callable[[Mapping[str, str]], Params] = field(default=_no_params)  # validated, normalized, stored


def _check_destroy(session: Session, credential_id: str, params: Params) -> None:
    credential = get_credential(session, credential_id)
    if credential.status == CredentialStatus.DESTROYED:
        raise Conflict(f"the key of credential {credential_id} is already destroyed")
    cert = credential.certificate
    if credential.status == CredentialStatus.ACTIVE and cert is not None and cert.status == CertificateStatus.VALID:
        raise InvalidInput(f"credential {credential_id} still has a valid certificate ({cert.serial}); revoke it first "
                           "(kyso cert revoke), then destroy its key", code="key_in_use")


def _destroy(ctx: PkiContext, session: Session, credential_id: str, params: Params, actor: str) -> dict[str, Any]:
    _check_destroy(session, credential_id, params)
    credential = session.execute(select(Credential).where(Credential.id == credential_id)
                                 .with_for_update(of=Credential)).unique().scalar_one()
    ctx.keystores.for_ref(credential.key_ref).delete(credential.key_ref)
    credential.status = CredentialStatus.DESTROYED
    audit.record(session, actor=actor, action="hsm:key:destroy", subject=credential_id, key_ref=credential.key_ref)
    return {"credential_id": credential_id, "status": CredentialStatus.DESTROYED}


def _revoke_ca_params(params: Mapping[str, str]) -> Params:
    """Exactly one parameter, the RFC 5280 reason, stored normalized (keyCompromise → cACompromise)."""
    unknown = set(params) - {"revocation_reason"}
    if unknown or "revocation_reason" not in params:
        raise InvalidInput(f"revoke-ca takes one parameter, revocation_reason; got {sorted(params)}")
    return {"revocation_reason": ca_revocation.ca_reason(params["revocation_reason"]).value}


def _check_revoke_ca(session: Session, name: str, params: Params) -> None:
    ca_revocation.check_revocable(session, name)


def _revoke_ca(ctx: PkiContext, session: Session, name: str, params: Params, actor: str) -> dict[str, Any]:
    reason = ca_revocation.ca_reason(params["revocation_reason"])
    return ca_revocation.revoke_ca(ctx, session, name, reason, actor, clock.now())


OPERATIONS: dict[str, Operation] = {
    "destroy-key": Operation(_check_destroy, _destroy),
    "revoke-ca": Operation(_check_revoke_ca, _revoke_ca, _revoke_ca_params),
}


def request(ctx: PkiContext, operation: str, subject: str, reason: str, actor: str,
            params: Mapping[str, str] | None = None) -> PendingApproval:
    """File a pending request; ``params`` are the operation's options, checked now and shown to the approver."""
    if operation not in OPERATIONS:
        raise InvalidInput(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
    if not reason.strip():
        raise InvalidInput("say why (the reason is shown to the approving operator and kept in the audit log)")
    stored = OPERATIONS[operation].params(params or {})
    now = clock.now()
    with transaction(ctx.sessions) as session:
        OPERATIONS[operation].check(session, subject, stored)
        row = PendingApproval(id="apr_" + secrets.token_hex(8), operation=operation, subject=subject,
                              params=json.dumps(stored, sort_keys=True),
                              reason=reason.strip(), status=ApprovalStatus.PENDING, requested_by=actor,
                              requested_at=now,
                              expires_at=now + dt.timedelta(hours=APPROVAL_HOURS))
        session.add(row)
        audit.record(session, actor=actor, action="pki:approval:request", subject=row.id, operation=operation,
                     target=subject, reason=row.reason, **stored)
        session.flush()
        session.expunge(row)
    return row


def _pending(session: Session, approval_id: str) -> PendingApproval:
    row = session.get(PendingApproval, approval_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no approval request {approval_id}")
    if row.status != ApprovalStatus.PENDING:
        raise Conflict(f"approval request {approval_id} is already {row.status} (by {row.decided_by})")
    if clock.aware(row.expires_at) <= clock.now():
        raise Conflict(f"approval request {approval_id} expired at {row.expires_at:%Y-%m-%d %H:%M} UTC; ask again")
    return row


def approve(ctx: PkiContext, approval_id: str, actor: str) -> dict[str, Any]:
    with transaction(ctx.sessions) as session:
        own = _pending(session, approval_id).requested_by == actor
    if own:
        with transaction(ctx.sessions) as session:  # its own transaction: the refusal must stay on record
            audit.record(session, actor=actor, action="pki:approval:self-approval-refused", subject=approval_id)
        raise PermissionDenied("a second operator must approve: the one who asked cannot approve their own request",
                               code="four_eyes")
    with transaction(ctx.sessions) as session:
        row = _pending(session, approval_id)
        if row.requested_by == actor:  # cannot change in between, but never run on a stale read
            raise PermissionDenied("a second operator must approve", code="four_eyes")
        result = OPERATIONS[row.operation].run(ctx, session, row.subject, json.loads(row.params or "{}"), actor)
        row.status, row.decided_by, row.decided_at = ApprovalStatus.APPROVED, actor, clock.now()
        audit.record(session, actor=actor, action="pki:approval:approve", subject=approval_id, operation=row.operation,
                     target=row.subject, requested_by=row.requested_by)
    ctx.ocsp_cache.clear()  # after the commit: a revocation shows in this worker's OCSP answers at once
    return {"approval_id": approval_id, "operation": row.operation, **result}


def reject(ctx: PkiContext, approval_id: str, actor: str, reason: str) -> None:
    with transaction(ctx.sessions) as session:
        row = _pending(session, approval_id)
        row.status, row.decided_by, row.decided_at = ApprovalStatus.REJECTED, actor, clock.now()
        audit.record(session, actor=actor, action="pki:approval:reject", subject=approval_id, reason=reason)


def listing(session: Session, *, pending_only: bool = True) -> list[PendingApproval]:
    query = select(PendingApproval).order_by(PendingApproval.requested_at.desc())
    if pending_only:
        query = query.where(PendingApproval.status == ApprovalStatus.PENDING)
    return list(session.execute(query).scalars())


def as_dict(row: PendingApproval) -> dict[str, Any]:
    return {"id": row.id, "operation": row.operation, "subject": row.subject, "reason": row.reason,
            "status": row.status, "requested_by": row.requested_by, "requested_at": row.requested_at.isoformat(),
            "expires_at": row.expires_at.isoformat(), "decided_by": row.decided_by,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None, **json.loads(row.params or "{}")}
