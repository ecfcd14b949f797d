"""CRLs (RFC 5280 section 5): full and delta, numbered from one monotonic counter per CA.

The counter lives on the CA row and is incremented under a row lock, so two workers can never
publish the same number. A delta names its base with Delta CRL Indicator and lists what changed
since the base, including certificates released from hold (reason removeFromCRL); it is served at
``/crl/<ca>-delta.crl`` for clients that ask for it.

Full CRLs do NOT carry Freshest CRL (RFC 5280 5.2.6), on purpose (issue 15, item 9). Measured with
a specialist certificate, CRLs only, hard-fail, before and after a revocation
(tests/interop/test_crl_only.py):

- pyhanko-certvalidator, given the full CRLs: a full CRL with Freshest CRL makes it demand the
  matching delta ("Delta CRL matching Freshest CRL extension not available") and fail; when it may
  fetch, it finds deltas only through the *certificate's* Freshest CRL, so every certificate
  already issued (CA certificates included, valid for 10-20 years) would keep failing;
- ``openssl verify -crl_check_all`` ignores deltas unless ``-use_deltas``, and passes either way;
- NSS (``crlutil``/``vfychain``) does not implement delta CRLs at all: it refuses to import one
  (SEC_ERROR_CRL_UNKNOWN_CRITICAL_EXTENSION) and validates with the full CRL alone.

And a delta never knows more than its base here: every status change (revocation, hold, release,
merger, CA revocation) publishes a new full CRL and a delta together (``publish_both``); scheduled
deltas only renew a shorter nextUpdate. So the pointer cost every certvalidator-based relying party
(and every PAdES validator reading the full CRLs kyso embeds in a DSS) its answer and bought
nothing. Putting Freshest CRL in certificates too would have fixed only certificates issued from
now on, and only for fetching clients.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction

from .builder import signature_hash
from .context import PkiContext
from .errors import CANotReady
from .models import Certificate, CertificateAuthority, CertificateStatus, Crl
from .reasons import Reason
from .store import get_ca

_ENTRY_COLUMNS = (Certificate.serial, Certificate.status, Certificate.revoked_at, Certificate.status_changed_at,
                  Certificate.revocation_reason, Certificate.released_at, Certificate.invalidity_date)


def _entry(row: Row[*tuple[Any, ...]], *, released: bool = False) -> x509.RevokedCertificate:
    """One CRL entry from the few columns it needs (100,000 of these must be cheap)."""
    extensions: list[x509.Extension[x509.ExtensionType]] = []
    if released:
        extensions.append(x509.Extension(x509.oid.CRLEntryExtensionOID.CRL_REASON, False,
                                          x509.CRLReason(x509.ReasonFlags.remove_from_crl)))
    else:
        reason = Reason(row.revocation_reason or "unspecified")
        if reason is not Reason.unspecified:  # RFC 5280 5.3.1: omit rather than say "unspecified"
            extensions.append(x509.Extension(x509.oid.CRLEntryExtensionOID.CRL_REASON, False,
                                             x509.CRLReason(reason.flag)))
        if row.invalidity_date is not None:  # RFC 5280 5.3.2, non-critical
            extensions.append(x509.Extension(x509.oid.CRLEntryExtensionOID.INVALIDITY_DATE, False,
                                             x509.InvalidityDate(clock.aware(row.invalidity_date).replace(tzinfo=None))))
    return x509.RevokedCertificateBuilder(
        serial_number=int(row.serial, 16), revocation_date=row.revoked_at or row.status_changed_at,
        extensions=extensions,
    ).build()


def latest(session: Session, ca: CertificateAuthority, *, delta: bool) -> Crl | None:
    return session.execute(
        select(Crl).where(Crl.ca_id == ca.id, Crl.is_delta == delta).order_by(Crl.number.desc()).limit(1)
    ).scalar_one_or_none()


def publish(ctx: PkiContext, session: Session, ca: CertificateAuthority, *, delta: bool,
            now: dt.datetime | None = None) -> Crl:
    """Build, sign and store the next CRL of ``ca`` in the caller's transaction."""
    if ca.cert_der is None or ca.key_ref is None:
        raise CANotReady(f"CA {ca.name!r} has no certificate or key here; it cannot publish CRLs")
    now = now or clock.now()
    locked = session.execute(
        select(CertificateAuthority).where(CertificateAuthority.id == ca.id).with_for_update()
    ).scalar_one()
    number = locked.next_crl_number
    locked.next_crl_number = number + 1
    ca_cert = ctx.certificate(ca.cert_der)
    hours = ctx.settings.delta_crl_validity_hours if delta else ctx.settings.crl_validity_hours
    next_update = now + dt.timedelta(hours=hours)
    extensions = [
        x509.Extension(x509.oid.ExtensionOID.CRL_NUMBER, False, x509.CRLNumber(number)),
        x509.Extension(x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER, False,
                       x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                           ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)),
    ]
    base_number = None
    if delta:
        base = latest(session, ca, delta=False)
        if base is None:
            raise CANotReady(f"CA {ca.name!r} has no full CRL yet; publish one before a delta")
        base_number = base.number
        extensions.append(x509.Extension(x509.oid.ExtensionOID.DELTA_CRL_INDICATOR, True,
                                         x509.DeltaCRLIndicator(base.number)))
        rows = session.execute(
            select(*_ENTRY_COLUMNS).where(Certificate.ca_id == ca.id, Certificate.status_changed_at >= base.this_update)
        )
        entries = [_entry(row) if row.status in (CertificateStatus.REVOKED, CertificateStatus.ON_HOLD)
                   else _entry(row, released=True)
                   for row in rows
                   if row.status in (CertificateStatus.REVOKED, CertificateStatus.ON_HOLD)
                   or row.released_at is not None]
    else:  # no Freshest CRL: see the module docstring
        rows = session.execute(
            select(*_ENTRY_COLUMNS).where(
                Certificate.ca_id == ca.id,
                Certificate.status.in_((CertificateStatus.REVOKED, CertificateStatus.ON_HOLD)),
                Certificate.not_after > now,  # expired certificates may leave the CRL (RFC 5280 3.3)
            )
        )
        entries = [_entry(row) for row in rows]
    # One constructor call: add_revoked_certificate() copies the list each time (quadratic).
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=ca_cert.subject, last_update=now, next_update=next_update,
        extensions=extensions, revoked_certificates=entries,
    )
    key = ctx.signer(ca.key_ref)
    crl = builder.sign(key, signature_hash(key))
    stored = Crl(ca_id=ca.id, number=number, is_delta=delta, base_number=base_number, this_update=now,
                 next_update=next_update, entries=len(entries), der=crl.public_bytes(serialization.Encoding.DER))
    session.add(stored)
    session.flush()
    return stored


def publish_both(ctx: PkiContext, session: Session, ca: CertificateAuthority,
                 now: dt.datetime | None = None) -> tuple[Crl, Crl]:
    """A new full CRL, then a delta on top of it (the state after every revocation)."""
    full = publish(ctx, session, ca, delta=False, now=now)
    return full, publish(ctx, session, ca, delta=True, now=now)


def due(session: Session, ca: CertificateAuthority, now: dt.datetime, validity_hours: int, *,
        delta: bool = False) -> bool:
    """True when the latest full (or delta) CRL is missing or past half its validity (scheduled refresh).

    Deltas live shorter than full CRLs (4 h against 24 h by default), so they need their own check:
    a delta refreshed only with the full CRL would lapse between revocations."""
    current = latest(session, ca, delta=delta)
    return current is None or current.next_update - now < dt.timedelta(hours=validity_hours) / 2


__all__ = ["due", "latest", "publish", "publish_both"]


def publish_now(ctx: PkiContext, ca_name: str, actor: str) -> tuple[Crl, Crl]:
    """Operator-requested publication of a new full and delta CRL, audited."""
    with transaction(ctx.sessions) as session:
        ca = get_ca(session, ca_name)
        full, delta = publish_both(ctx, session, ca)
        audit.record(session, actor=actor, action="pki:crl:publish", subject=ca.name, number=full.number,
                     delta_number=delta.number)
    return full, delta
