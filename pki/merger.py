"""Commune mergers: re-issue every affected certificate under the new unit, revoke the old ones.

One audited operation, one transaction: either every specialist of the merged units gets a
certificate naming the new unit (same key, so their signing credential keeps working) and every
old certificate is revoked, or nothing changes. ``dry_run`` computes the same plan and writes
nothing.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy import select

from core import audit, clock
from core.db import transaction
from core.errors import InvalidInput
from policies import units

from . import crl
from .context import PkiContext
from .issuance import issue_row
from .models import Certificate, CertificateStatus, CredentialStatus
from .names import build_name, name_attributes
from .reasons import Reason
from .revocation import revoke_row
from .store import credential_for

MERGER_REASONS = {Reason.affiliationChanged, Reason.superseded, Reason.cessationOfOperation}


@dataclass(frozen=True)
class MergerChange:
    old_serial: str
    new_serial: str | None
    common_name: str
    old_commune: str
    old_subject: str
    new_subject: str
    credential_id: str | None


@dataclass
class MergerReport:
    from_codes: list[str]
    into_code: str
    into_name: str
    effective: dt.date
    reason: str
    dry_run: bool
    changes: list[MergerChange] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _new_attributes(old: dict[str, str], old_unit: units.UnitView, new_unit: units.UnitView) -> dict[str, str]:
    attrs = dict(old)
    attrs["L"] = new_unit.full_name
    attrs["ST"] = new_unit.province_name or attrs.get("ST", "")
    if attrs.get("O") == f"Ủy ban nhân dân {old_unit.full_name}" or "O" not in attrs:
        attrs["O"] = f"Ủy ban nhân dân {new_unit.full_name}"
    return attrs


def merge(ctx: PkiContext, from_codes: list[str], into_code: str, actor: str, *,
          reason: Reason = Reason.affiliationChanged, effective: dt.date | None = None, dry_run: bool = False,
          progress: Callable[[int, int], None] | None = None) -> MergerReport:
    if reason not in MERGER_REASONS:
        raise InvalidInput(f"a merger revokes as one of {sorted(r.value for r in MERGER_REASONS)}, not {reason.value}")
    from_codes = sorted(set(from_codes))
    if not from_codes:
        raise InvalidInput("name at least one unit that is merged (from)")
    if into_code in from_codes and len(from_codes) == 1:
        raise InvalidInput("a unit cannot be merged into itself alone")
    with transaction(ctx.sessions) as session:
        now = clock.now()
        effective = effective or now.date()
        new_unit = units.view(session, into_code, effective)
        if new_unit.level != "commune":
            raise InvalidInput(f"{into_code} is a province; merge into a commune or ward")
        # the old units may already be closed in the catalogue on the effective date: look the day before
        old_units = {code: units.view(session, code, effective - dt.timedelta(days=1)) for code in from_codes}
        report = MergerReport(from_codes, into_code, new_unit.full_name, effective, reason.value, dry_run)
        rows = session.execute(
            select(Certificate).where(
                Certificate.commune_code.in_(from_codes), Certificate.status == CertificateStatus.VALID,
                Certificate.not_after > now, Certificate.external.is_(False),
            ).order_by(Certificate.id).with_for_update(of=Certificate)
        ).scalars().all()
        touched_cas = {}
        for index, old in enumerate(rows, start=1):
            profile = ctx.profiles.get(old.profile)
            old_cert = x509.load_der_x509_certificate(old.der)
            attrs = _new_attributes(name_attributes(old_cert.subject), old_units[old.commune_code or ""], new_unit)
            name = build_name(attrs, profile)
            credential = credential_for(session, old)
            new_serial = None
            if not dry_run:
                new = issue_row(ctx, session, ca=old.ca, profile=profile, name=name, public_key=old_cert.public_key(),
                                key_ref=old.key_ref, actor=actor, now=now, commune_code=new_unit.code,
                                province_code=new_unit.province_code, replaces=old.serial,
                                action="pki:certificate:reissue")
                revoke_row(ctx, session, old, reason, actor, now)
                if credential is not None:
                    credential.certificate_id, credential.status = new.id, CredentialStatus.ACTIVE
                new_serial = new.serial
                touched_cas[old.ca.id] = old.ca
            report.changes.append(MergerChange(old.serial, new_serial, old.common_name, old.commune_code or "",
                                               old.subject, name.rfc4514_string(),
                                               credential.id if credential else None))
            if progress:
                progress(index, len(rows))
        if dry_run:
            session.rollback()
            return report
        for ca in touched_cas.values():
            crl.publish_both(ctx, session, ca, now)
        audit.record(session, actor=actor, action="pki:merger:apply", subject=into_code, from_codes=from_codes,
                     effective=effective.isoformat(), reason=reason.value, reissued=len(report.changes),
                     serials=[(c.old_serial, c.new_serial) for c in report.changes])
    ctx.ocsp_cache.clear()
    return report
