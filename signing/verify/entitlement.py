"""Was each signer of a kyso document entitled to sign it, under the policy version it was signed under?

The registry records, for every signature, the policy version and the rule that allowed it
(``document_files``); the policy text of every version is kept (``policies.history``). Verification
asks the same question again with that version's rules and the signer's certificate as kyso
recorded it, so a policy changed later never rewrites what a past signature meant, and a signature
that slipped past the policy (or a record altered since) is reported.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cache import Cache
from pki.models import Certificate
from policies import history, units
from policies.documents import DocumentPolicy
from policies.engine import SignerFacts, Target, decide
from policies.errors import PolicyInvalid, UnknownDocumentType, UnknownUnit
from signing.registry.models import DocumentFile, SignedDocument
from signing.verify.report import Entitlement, RegistryInfo, SignatureReport, Text


@dataclass(frozen=True)
class SignatureRecord:
    signer_serial: str | None
    policy_version: str | None
    rule: str | None


@dataclass(frozen=True)
class Records:
    """What the registry knows about a document's signatures, read in the verification's transaction."""

    document_type: str
    commune_code: str
    province_code: str | None
    signatures: tuple[SignatureRecord, ...]
    policies: dict[str, DocumentPolicy | None]
    signers: dict[str, tuple[str, str | None, str | None]]  # serial → (profile, commune, province)


_MISSING = object()


@dataclass
class Lookups:
    """What the registry's answers repeat from one verification to the next, kept per process: owned
    by the verifier and passed to ``read`` (never module state shared by every container)."""

    # a serial's profile and commune never change
    signers: Cache[str, tuple[str, str | None, str | None]] = field(
        default_factory=lambda: Cache("entitlement_signers", max_entries=50_000))
    # the catalogue is versioned by date: stable per (code, day)
    provinces: Cache[tuple[str, dt.date], str | None] = field(
        default_factory=lambda: Cache("unit_provinces", max_entries=50_000))
    # a recorded policy version's text never changes (``policies.history``)
    policies: Cache[str, DocumentPolicy] = field(
        default_factory=lambda: Cache("policy_versions", max_entries=64))


def read(session: Session, registry: RegistryInfo, lookups: Lookups) -> Records | None:
    doc = session.get(SignedDocument, registry.document_id)
    if doc is None:
        return None
    rows = session.execute(select(DocumentFile.signer_serial, DocumentFile.policy_version, DocumentFile.policy_rule)
                           .where(DocumentFile.document_id == doc.id, DocumentFile.change == "signature")
                           .order_by(DocumentFile.version)).all()
    records = tuple(SignatureRecord(r.signer_serial, r.policy_version or doc.policy_version, r.policy_rule)
                    for r in rows)
    on = doc.signed_at.date()
    policies: dict[str, DocumentPolicy | None] = {}
    for version in {r.policy_version for r in records if r.policy_version}:
        try:
            policies[version] = history.recorded(session, version, lookups.policies)
        except PolicyInvalid:
            policies[version] = None
    signers = {}
    for serial in {r.signer_serial for r in records if r.signer_serial}:
        known = lookups.signers.get(serial)
        if known is None:
            row = session.execute(select(Certificate.profile, Certificate.commune_code)
                                  .where(Certificate.serial == serial)).first()
            if row is None:
                continue
            known = (row.profile, row.commune_code, _province(session, row.commune_code, on, lookups))
            lookups.signers.put(serial, known)
        signers[serial] = known
    return Records(doc.document_type, doc.commune_code, _province(session, doc.commune_code, on, lookups), records,
                   policies, signers)


VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def named(session: Session, registry: RegistryInfo, records: Records) -> RegistryInfo:
    """The registry facts with the words a report shows for them: the document type's title from the policy
    version it was signed under, and the commune's full name (and province) on the signing day."""
    title = next((Text(p.types[registry.document_type].title_vi, p.types[registry.document_type].title_en)
                  for p in records.policies.values() if p is not None and registry.document_type in p.types), None)
    try:
        day = registry.signed_at.astimezone(VIETNAM).date() if registry.signed_at.tzinfo else registry.signed_at.date()
        unit = units.view(session, registry.commune_code, day)
        commune: str | None = unit.full_name + (f", {unit.province_name}" if unit.province_name else "")
    except UnknownUnit:
        commune = None
    return dataclasses.replace(registry, document_type_title=title, commune_name=commune)


def _province(session: Session, code: str | None, on: dt.date, lookups: Lookups) -> str | None:
    if not code:
        return None
    key = (code, on)
    province = lookups.provinces.get(key, _MISSING)
    if province is _MISSING:
        try:
            province = units.lookup(session, code, on).province_code
        except UnknownUnit:
            province = None
        lookups.provinces.put(key, province)
    return province


def judge(reports: list[SignatureReport], records: Records) -> list[SignatureReport]:
    """Each report of a signature kyso made, with its entitlement; others unchanged."""
    out: list[SignatureReport] = []
    step = 0
    for report in reports:
        if report.kind != "signature" or report.signer is None:
            out.append(report)
            continue
        record = next((r for r in records.signatures if r.signer_serial == report.signer.serial), None)
        if record is None:
            out.append(report)  # not a signature kyso made: no policy applies
            step += 1
            continue
        out.append(dataclasses.replace(report, entitlement=_entitlement(report, record, records, step)))
        step += 1
    return out


def _entitlement(report: SignatureReport, record: SignatureRecord, records: Records, step: int) -> Entitlement:
    policy = records.policies.get(record.policy_version or "")
    signer = records.signers.get(record.signer_serial or "")
    if policy is None or signer is None:
        return Entitlement(None, record.policy_version, record.rule,
                           f"policy version {record.policy_version} is not on record; entitlement not checked")
    profile, commune, province = signer
    facts = SignerFacts(profile=profile, commune_code=commune, province_code=province,
                        title=report.signer.title if report.signer else None,
                        unit=report.signer.unit if report.signer else None)
    try:
        decision = decide(policy, facts,
                          Target(records.document_type, records.commune_code, records.province_code, step))
    except UnknownDocumentType:
        return Entitlement(False, record.policy_version, "document_types",
                           f"policy {policy.version} has no document type {records.document_type}")
    return Entitlement(decision.allowed, policy.version, decision.rule, decision.reason)
