"""Revoking an issuing CA: its certificate goes on the parent's CRL and OCSP, and it stops issuing.

A CA is revoked only through four eyes (``pki.approvals``, operation ``revoke-ca``): these
functions check and run the revocation inside the approver's transaction. The CA's certificate
row under its parent is revoked with the end-entity machinery (``revocation.revoke_row``, which
also re-signs the parent's OCSP answer for it), the CA row is marked ``revoked`` (issuance and
renewal then refuse with ``CARevoked``), and the parent publishes a fresh full and delta CRL, all
in one transaction with the ``pki:ca:revoke`` audit entry.

A root CA cannot be revoked: nothing above it signs a CRL that could list it; relying parties
remove it from their trust stores instead.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.errors import InvalidInput

from . import crl
from .context import PkiContext
from .errors import CANotReady, RevocationConflict
from .models import CaStatus, Certificate, CertificateAuthority
from .reasons import Reason
from .revocation import revoke_row
from .store import get_ca

CA_REASONS = (Reason.cACompromise, Reason.affiliationChanged, Reason.superseded, Reason.cessationOfOperation)
_ALIASES = {Reason.keyCompromise.value: Reason.cACompromise}  # RFC 5280 5.3.1: a CA's key → cACompromise


def ca_reason(value: str) -> Reason:
    """The RFC 5280 reason for revoking a CA; keyCompromise is accepted and recorded as cACompromise."""
    reason = _ALIASES.get(value) or next((r for r in CA_REASONS if r.value == value), None)
    if reason is None:
        allowed = ", ".join(r.value for r in CA_REASONS)
        raise InvalidInput(f"{value!r} is not a reason to revoke a CA; use one of {allowed} "
                           "(keyCompromise is accepted and recorded as cACompromise)", code="bad_ca_reason")
    return reason


def check_revocable(session: Session, name: str) -> CertificateAuthority:
    """Refuse what cannot be revoked here (root, external parent, pending, already revoked), naming what to do."""
    ca = get_ca(session, name)
    if ca.role == "root":
        raise InvalidInput(f"CA {name!r} is a root CA: no CRL can list it, since nothing above it signs one. "
                           "Remove its certificate from the relying parties' trust stores instead "
                           "(and revoke its issuing CAs here)", code="root_ca_not_revocable")
    if ca.status == CaStatus.REVOKED:
        raise RevocationConflict(f"CA {name!r} is already revoked")
    if ca.cert_der is None or ca.status != CaStatus.ACTIVE:
        raise CANotReady(f"CA {name!r} is {ca.status} and has no certificate yet; there is nothing to revoke")
    if ca.parent_id is None:
        issuer = x509.load_der_x509_certificate(ca.cert_der).issuer.rfc4514_string()
        raise InvalidInput(f"CA {name!r} was certified by an external root ({issuer}); only that root can list it "
                           "on its CRL: ask its operator to revoke it", code="external_parent")
    return ca


def _certificate_row(session: Session, ca: CertificateAuthority) -> Certificate:
    """The CA's own certificate as its parent issued it (the row the parent's CRL and OCSP read)."""
    assert ca.cert_der is not None
    row = session.execute(select(Certificate).where(
        Certificate.ca_id == ca.parent_id, Certificate.sha256 == hashlib.sha256(ca.cert_der).hexdigest(),
    ).with_for_update(of=Certificate)).scalar_one_or_none()
    if row is None:
        raise CANotReady(f"the certificate of CA {ca.name!r} is not in its parent's store; kyso cannot list it "
                         "on the parent's CRL")
    return row


def revoke_ca(ctx: PkiContext, session: Session, name: str, reason: Reason, actor: str,
              now: dt.datetime) -> dict[str, object]:
    """Revoke CA ``name`` in ``session``; the caller commits, then clears the OCSP answer cache."""
    check_revocable(session, name)
    ca = session.execute(select(CertificateAuthority).where(CertificateAuthority.name == name)
                         .with_for_update()).scalar_one()
    if ca.status == CaStatus.REVOKED:  # re-read under the lock: a concurrent approval may have won
        raise RevocationConflict(f"CA {name!r} is already revoked")
    row = _certificate_row(session, ca)
    parent = row.ca
    revoke_row(ctx, session, row, reason, actor, now)  # also re-signs the parent's OCSP answer for it
    ca.status = CaStatus.REVOKED
    full, delta = crl.publish_both(ctx, session, parent, now)
    audit.record(session, actor=actor, action="pki:ca:revoke", subject=ca.name, serial=row.serial,
                 parent=parent.name, reason=reason.value, dn=ca.subject, crl_number=full.number,
                 delta_crl_number=delta.number)
    return {"ca": ca.name, "status": ca.status, "serial": row.serial, "revocation_reason": reason.value,
            "parent": parent.name, "crl_number": full.number}


__all__ = ["CA_REASONS", "ca_reason", "check_revocable", "revoke_ca"]
