"""CRLs (RFC 5280 section 5): full and delta, numbered from one monotonic counter per CA.

The counter lives on the CA row and is incremented under a row lock, so two workers can never
publish the same number. A full CRL points at its delta with Freshest CRL; a delta names its
base with Delta CRL Indicator and lists what changed since the base, including certificates
released from hold (reason removeFromCRL).
"""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction

from .builder import Endpoints, signature_hash
from .context import PkiContext
from .errors import CANotReady
from .models import Certificate, CertificateAuthority, Crl
from .store import get_ca
from .reasons import Reason


_ENTRY_COLUMNS = (Certificate.serial, Certificate.status, Certificate.revoked_at, Certificate.status_changed_at,
                  Certificate.revocation_reason, Certificate.released_at)


def _entry(row: Row, *, released: bool = False) -> x509.RevokedCertificate:
    """One CRL entry from the few columns it needs (100,000 of these must be cheap)."""
    extensions = []
    if released:
        extensions.append(x509.Extension(x509.oid.CRLEntryExtensionOID.CRL_REASON, False,
                                          x509.CRLReason(x509.ReasonFlags.remove_from_crl)))
    else:
        reason = Reason(row.revocation_reason or "unspecified")
        if reason is not Reason.unspecified:  # RFC 5280 5.3.1: omit rather than say "unspecified"
            extensions.append(x509.Extension(x509.oid.CRLEntryExtensionOID.CRL_REASON, False, x509.CRLReason(reason.flag)))
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
    endpoints = Endpoints(ctx.settings.base_url, ca.name)
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
        entries = [_entry(row) if row.status in ("revoked", "on_hold") else _entry(row, released=True)
                   for row in rows if row.status in ("revoked", "on_hold") or row.released_at is not None]
    else:
        extensions.append(x509.Extension(x509.oid.ExtensionOID.FRESHEST_CRL, False, x509.FreshestCRL([
            x509.DistributionPoint([x509.UniformResourceIdentifier(endpoints.delta_crl)], None, None, None)])))
        rows = session.execute(
            select(*_ENTRY_COLUMNS).where(
                Certificate.ca_id == ca.id, Certificate.status.in_(("revoked", "on_hold")),
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


def publish_both(ctx: PkiContext, session: Session, ca: CertificateAuthority, now: dt.datetime | None = None) -> tuple[Crl, Crl]:
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


__all__ = ["publish", "publish_both", "latest", "due"]


def publish_now(ctx: PkiContext, ca_name: str, actor: str) -> tuple[Crl, Crl]:
    """Operator-requested publication of a new full and delta CRL, audited."""
    with transaction(ctx.sessions) as session:
        ca = get_ca(session, ca_name)
        full, delta = publish_both(ctx, session, ca)
        audit.record(session, actor=actor, action="pki:crl:publish", subject=ca.name, number=full.number,
                     delta_number=delta.number)
    return full, delta
