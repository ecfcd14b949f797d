"""What a verification found, as frozen facts (ETSI EN 319 102-1 indications, TS 119 102-2 in spirit).

One ``SignatureReport`` per signature or document timestamp, with separate facets (integrity,
chain, revocation, timestamp, coverage) and a bottom line; one ``VerificationReport`` per file,
with the registry record when the document is kyso's. Each report carries plain-language
sentences in Vietnamese and English; nothing here decides anything.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from signing.registry.models import DocumentStatus
from signing.verify.indications import Indication, SubIndication

INDICATION_ORDER = {i: i.severity for i in Indication}
# visual differences a person would see that were not signed (overlaps and "not compared" are facts, not verdicts)
VISIBLE_CHANGES = frozenset({"pixels", "page_count", "page_size"})


@dataclass(frozen=True)
class Text:
    """A sentence in both languages; Vietnamese first."""

    vi: str
    en: str


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    common_name: str | None
    title: str | None
    organization: str | None
    serial: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str
    unit: str | None = None  # organisationalUnitName


@dataclass(frozen=True)
class RevocationInfo:
    status: Literal["good", "revoked", "unknown", "not_checked"]
    source: Literal["dss", "kyso", "none"]
    revoked_at: dt.datetime | None = None
    reason: str | None = None
    revoked_after_signing: bool | None = None


@dataclass(frozen=True)
class TimestampInfo:
    time: dt.datetime
    tsa: str | None
    intact: bool
    trusted: bool


@dataclass(frozen=True)
class CoverageInfo:
    covers: Literal["entire_file", "entire_revision", "partial"]
    revision: int  # 1-based revision the signature was added in
    later_revisions: int  # revisions appended after it
    modification_level: str  # NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER
    docmdp_permission: int | None  # 1, 2 or 3 from a certification signature
    changes_allowed: bool


@dataclass(frozen=True)
class Entitlement:
    """Whether the signing policy version the signature was made under allowed this signer
    (for signatures kyso made; ``allowed`` is None when that version is not on record)."""

    allowed: bool | None
    policy_version: str | None
    rule: str | None
    reason: str


@dataclass(frozen=True)
class LogRecord:
    """Where the transparency log holds the registration of a kyso signature (its document version), as
    verified by kyso before reporting it: ``logged`` with the entry index, the checkpoint (origin, tree
    size, base64 root) and the C2SP tlog-proof; ``pending`` (not yet in a checkpoint: ask again in a few
    seconds); ``unconfirmed`` (storage has an entry whose proof did not verify: not logged); ``absent``."""

    state: Literal["logged", "pending", "unconfirmed", "absent"]
    document_id: str
    version: int | None = None
    index: int | None = None
    origin: str | None = None
    tree_size: int | None = None
    root_hash: str | None = None
    proof: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SignatureReport:
    field_name: str
    kind: Literal["signature", "document_timestamp"]
    indication: Indication
    sub_indication: SubIndication | None
    intact: bool
    signer: CertificateInfo | None
    chain: tuple[CertificateInfo, ...]
    trust_anchor: str | None
    claimed_signing_time: dt.datetime | None
    timestamp: TimestampInfo | None
    revocation: RevocationInfo
    coverage: CoverageInfo
    level: str | None  # B-B, B-T, B-LT, B-LTA (None for a document timestamp)
    digest_algorithm: str
    signature_algorithm: str
    summary: Text
    notes: tuple[Text, ...] = ()
    entitlement: Entitlement | None = None
    registered: bool | None = None  # for a kyso certificate: whether kyso recorded making this signature
    log: LogRecord | None = None  # for a registered kyso signature: its registration in the transparency log


@dataclass(frozen=True)
class RegistryInfo:
    document_id: str
    status: str  # valid, withdrawn, superseded
    document_type: str
    commune_code: str
    signed_at: dt.datetime
    version: int  # the version this file is
    current_version: int
    is_current: bool
    status_reason: str | None = None
    superseded_by: str | None = None
    document_type_title: Text | None = None  # the policy's title for the type, as recorded at signing
    commune_name: str | None = None  # the catalogue's full name on the signing day, with its province


@dataclass(frozen=True)
class Modification:
    """One change made after a signature that nothing accounts for (not a DSS update, not a trusted
    document timestamp, not a further valid signature with its own field and appearance)."""

    revision: int  # 1-based revision (incremental update) that made the change; 0: bytes outside any revision
    after_signature: str  # the field name of the signature the change follows
    # annotation, widget, form_value, visibility, appearance, page, content, catalog, trailing_bytes, object
    category: str
    object: str | None  # e.g. "12 0 R"
    page: int | None  # 1-based, when the change is on a page
    text: Text


@dataclass(frozen=True)
class VisualDifference:
    """Where the rendered final file differs from the rendered signed revision (EU DSS's visual and
    annotation-overlap checks, in spirit)."""

    page: int  # 1-based
    box: tuple[float, float, float, float] | None  # PDF user space of that page: x0, y0, x1, y1
    kind: str  # pixels, page_count, page_size, annotation_overlap
    text: Text


@dataclass(frozen=True)
class SignedRevision:
    """Where the relying party gets what was signed: a registered version, or the byte prefix the
    signature covers (every incremental update is a readable PDF on its own)."""

    field_name: str
    revision: int
    length: int  # the first ``length`` bytes of the file are that revision
    document_id: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class VerificationReport:
    indication: Indication
    sub_indication: SubIndication | None
    sha256: str
    signatures: tuple[SignatureReport, ...]
    registry: RegistryInfo | None
    validated_at: dt.datetime
    summary: Text
    notes: tuple[Text, ...] = field(default_factory=tuple)
    modifications: tuple[Modification, ...] = field(default_factory=tuple)
    visual_differences: tuple[VisualDifference, ...] = field(default_factory=tuple)
    signed_revision: SignedRevision | None = None
    validation_policy: str = "ETSI EN 319 102-1 basic/LTV validation, kyso trust list"

    @property
    def genuine(self) -> bool:
        """At least one signature (a timestamp alone signs nothing), every signature passed, nothing
        changed after signing that is not accountable, every signer kyso recorded was entitled by the
        signing policy, and, for a kyso document, the registry still says valid."""
        entitled = all(s.entitlement is None or s.entitlement.allowed is not False for s in self.signatures)
        signed = any(s.kind == "signature" for s in self.signatures)
        recorded = all(s.registered is not False for s in self.signatures)
        return (self.indication == Indication.TOTAL_PASSED and signed and entitled and recorded
                and not self.modifications and not self.seen_changed
                and (self.registry is None or self.registry.status == DocumentStatus.VALID))

    @property
    def seen_changed(self) -> bool:
        """Whether the file as rendered differs from what was signed outside later signatures' widgets."""
        return any(v.kind in VISIBLE_CHANGES for v in self.visual_differences)

    def as_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(dataclasses.asdict(self))
        return plain | {"genuine": self.genuine}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
