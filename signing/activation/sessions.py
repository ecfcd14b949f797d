"""Server-side sessions of the specialist's page /me.

Signing in (``factors.sign_in``) opens one: the cookie carries a random token, the table its SHA-256
only. A session is refused once it expired, was revoked (logout; the credential locked; its PIN
changed; a re-enrolment confirmed), or its credential is no longer active (revoked, retired) or
its activation data changed after the session began. It lets her read her page; it grants no
signature (approving asks for the PIN and a fresh code again).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from pki.context import PkiContext
from pki.models import CertificateStatus, Credential, CredentialStatus
from signing.activation import accounts
from signing.activation.models import ActivationData, ActivationState, SpecialistSession

LIFETIME = dt.timedelta(minutes=15)  # long enough to review a morning's requests, short on a shared counter PC
PREFIX = "kyso_me_"


@dataclass(frozen=True)
class SignedIn:
    """A live session: the credential she is looking at and the person (for choosing another)."""

    credential_id: str
    person: str


def _id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, credential_id: str, person: str, address: str,
                 now: dt.datetime | None = None) -> str:
    """A new session row inside the caller's transaction; returns the cookie token (shown once)."""
    now = now or clock.now()
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(SpecialistSession(id=_id(token), credential_id=credential_id, person=person, address=address[:64],
                                  created_at=now, expires_at=now + LIFETIME))
    return token


def _live(session: Session, row: SpecialistSession, now: dt.datetime) -> bool:
    if row.revoked_at is not None or clock.aware(row.expires_at) <= now:
        return False
    credential = session.get(Credential, row.credential_id)
    if (credential is None or credential.status != CredentialStatus.ACTIVE or credential.certificate is None
            or credential.certificate.status != CertificateStatus.VALID):
        return False  # revoked, on hold, retired or destroyed: the session ends with it
    data = session.get(ActivationData, row.credential_id)
    if data is None or data.state != ActivationState.ACTIVE or data.locked_at is not None:
        return False
    changed = max((clock.aware(t) for t in (data.confirmed_at, data.pin_changed_at) if t is not None), default=None)
    return changed is None or changed <= clock.aware(row.created_at)


def read(ctx: PkiContext, token: str | None) -> SignedIn | None:
    """The live session a cookie names, or None."""
    if not token or not token.startswith(PREFIX) or len(token) > 100:
        return None
    now = clock.now()
    with transaction(ctx.sessions) as session:
        row = session.get(SpecialistSession, _id(token))
        if row is None or not _live(session, row, now):
            return None
        return SignedIn(row.credential_id, row.person)


def revoke(ctx: PkiContext, token: str | None, why: str = "logout") -> bool:
    """End one session (logout); True when a live one ended. Audited."""
    if not token:
        return False
    with transaction(ctx.sessions) as session:
        row = session.get(SpecialistSession, _id(token))
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at, row.revoked_why = clock.now(), why
        audit.record(session, actor=f"specialist:{row.credential_id}", action="activation:session:end",
                     subject=row.credential_id, why=why)
        return True


def revoke_all(session: Session, credential_id: str, why: str, now: dt.datetime | None = None) -> int:
    """End every live session of a credential inside the caller's transaction (lock, PIN change,
    re-enrolment); the number ended."""
    result = session.execute(update(SpecialistSession)
                             .where(SpecialistSession.credential_id == credential_id,
                                    SpecialistSession.revoked_at.is_(None))
                             .values(revoked_at=now or clock.now(), revoked_why=why)
                             .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Choice:
    credential_id: str
    name: str
    commune_code: str | None
    serial: str | None


def choices(ctx: PkiContext, signed_in: SignedIn) -> list[Choice]:
    """The credentials the signed-in person may switch to (hers, active)."""
    with transaction(ctx.sessions) as session:
        return [Choice(c.id, c.certificate.common_name if c.certificate else c.id,
                       c.certificate.commune_code if c.certificate else None,
                       c.certificate.serial if c.certificate else None)
                for c in accounts.credentials_of_person(session, signed_in.person)]


def switch(ctx: PkiContext, token: str, credential_id: str) -> bool:
    """Look at another of her credentials in the same session; False when it is not hers."""
    now = clock.now()
    with transaction(ctx.sessions) as session:
        row = session.get(SpecialistSession, _id(token))
        if row is None or not _live(session, row, now):
            return False
        if credential_id not in {c.id for c in accounts.credentials_of_person(session, row.person)}:
            return False
        data = session.get(ActivationData, credential_id)
        if data is None or data.state != ActivationState.ACTIVE or data.locked_at is not None:
            return False
        row.credential_id = credential_id
        audit.record(session, actor=f"specialist:{credential_id}", action="activation:session:switch",
                     subject=credential_id)
        return True
