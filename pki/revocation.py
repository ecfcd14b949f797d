"""Revocation, certificate hold and release (removeFromCRL).

A status change, its audit entry, the refreshed OCSP response and the new full and delta CRLs
are one transaction: no revocation can exist that the CRL and OCSP do not show.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import InvalidInput

from . import crl, ocsp
from .context import PkiContext
from .errors import FourEyesRequired, RevocationConflict
from .models import Certificate, CertificateStatus, CredentialStatus
from .reasons import Reason
from .store import credential_for, get_certificate
from .transparency import events as transparency


def check_invalidity_date(row: Certificate, reason: Reason, when: dt.datetime | None,
                          now: dt.datetime) -> dt.datetime | None:
    """RFC 5280 5.3.2 invalidityDate: "the date on which it is known or suspected that the private key
    was compromised or that the certificate otherwise became invalid". It may be earlier than the
    revocation (that is its point: signatures made between it and the revocation are not to be
    trusted), never later than now and never before the certificate's notBefore (nothing was signed
    with it then). A hold says nothing has been found invalid yet, so it takes none."""
    if when is None:
        return None
    when = clock.aware(when).astimezone(dt.UTC).replace(microsecond=0)
    if reason is Reason.certificateHold:
        raise InvalidInput("a certificate hold takes no invalidity date (it suspends, it does not say since when "
                           "the certificate is invalid); give the date when revoking it for good")
    if when > now:
        raise InvalidInput(f"the invalidity date {when:%Y-%m-%d %H:%M:%S}Z is in the future", field="invalidity_date")
    if when < clock.aware(row.not_before):
        raise InvalidInput(f"the invalidity date {when:%Y-%m-%d %H:%M:%S}Z is before certificate {row.serial} was "
                           f"valid (notBefore {clock.aware(row.not_before):%Y-%m-%d %H:%M:%S}Z)",
                           field="invalidity_date")
    return when


def revoke_row(ctx: PkiContext, session: Session, row: Certificate, reason: Reason | str, actor: str,
               now: dt.datetime, *, publish: bool = False, invalidity_date: dt.datetime | None = None) -> None:
    """Change one row's status inside ``session``; CRLs are published by the caller (once per batch)."""
    reason = Reason(reason)
    invalidity_date = check_invalidity_date(row, reason, invalidity_date, now)
    if row.external:
        raise RevocationConflict(f"certificate {row.serial} was issued by an external CA; revoke it there "
                                 "(kyso records it at the next status check)")
    if row.status == CertificateStatus.REVOKED:
        raise RevocationConflict(f"certificate {row.serial} is already revoked ({row.revocation_reason})")
    if row.status == CertificateStatus.ON_HOLD and reason is Reason.certificateHold:
        raise RevocationConflict(f"certificate {row.serial} is already on hold")
    if row.status == CertificateStatus.VALID:  # a held certificate revoked for good keeps the date of its hold
        row.revoked_at = now
    row.status = CertificateStatus.ON_HOLD if reason is Reason.certificateHold else CertificateStatus.REVOKED
    row.revocation_reason = reason.value
    row.status_changed_at = now
    row.released_at = None
    row.invalidity_date = invalidity_date
    credential = credential_for(session, row)
    if credential is not None and row.status == CertificateStatus.REVOKED:
        credential.status = CredentialStatus.RETIRED
    ocsp.preproduce(ctx, session, row.ca, row, now)
    audit.record(session, actor=actor,
                 action="pki:certificate:" + ("hold" if row.status == CertificateStatus.ON_HOLD else "revoke"),
                 subject=row.serial, ca=row.ca.name, reason=reason.value, dn=row.subject,
                 **({"invalidity_date": invalidity_date.isoformat()} if invalidity_date else {}))
    transparency.record(session, transparency.certificate_revoked(
        der=row.der, serial=row.serial, issuer=row.ca.subject, reason=reason.value, commune=row.commune_code, at=now))
    if publish:
        crl.publish_both(ctx, session, row.ca, now)


CA_PROFILES = ("root-ca", "issuing-ca")


def revoke(ctx: PkiContext, serial: str, reason: Reason, actor: str, *,
           invalidity_date: dt.datetime | None = None) -> Certificate:
    """Revoke (or hold) one end-entity certificate. A CA's own certificate is refused here: revoking a
    CA takes a second operator's approval (``pki.ca_revocation``, ``kyso ca revoke``).

    ``invalidity_date`` (optional, typically with keyCompromise): since when the key is suspected
    compromised; stored in ``certificates.invalidity_date``, put on the CRL entry and the OCSP answer."""
    with transaction(ctx.sessions) as session:
        row = get_certificate(session, serial, for_update=True)
        ca_certificate = row.profile in CA_PROFILES
        if not ca_certificate:
            revoke_row(ctx, session, row, reason, actor, clock.now(), publish=True, invalidity_date=invalidity_date)
    if ca_certificate:
        error = FourEyesRequired(
            f"certificate {row.serial} is a CA's own certificate ({row.common_name}); revoking a CA needs a "
            "second operator's approval: `kyso ca revoke NAME --reason R` or POST /api/v1/cas/{name}/revoke, "
            "then another operator approves it", serial=row.serial)
        with transaction(ctx.sessions) as session:
            audit.record(session, actor=actor, action="pki:certificate:revoke:deny", subject=row.serial,
                         reason=error.message, answered=error.code)
        raise error
    ctx.ocsp_cache.clear()  # after the commit: this worker answers from the new state at once
    return row


def release(ctx: PkiContext, serial: str, actor: str) -> Certificate:
    """Lift a certificateHold: the certificate is good again and the next delta says removeFromCRL."""
    with transaction(ctx.sessions) as session:
        row = get_certificate(session, serial, for_update=True)
        if row.status != CertificateStatus.ON_HOLD:
            raise RevocationConflict(
                f"certificate {row.serial} is {row.status}, not on hold; only a hold can be released")
        now = clock.now()
        row.status, row.revocation_reason = CertificateStatus.VALID, None
        row.released_at, row.status_changed_at = now, now
        row.invalidity_date = None
        ocsp.preproduce(ctx, session, row.ca, row, now)
        audit.record(session, actor=actor, action="pki:certificate:release", subject=row.serial, ca=row.ca.name,
                     dn=row.subject)
        crl.publish_both(ctx, session, row.ca, now)
    ctx.ocsp_cache.clear()
    return row
