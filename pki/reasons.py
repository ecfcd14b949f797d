"""RFC 5280 revocation reasons, and the legal grounds of Vietnamese practice that map to them."""
from __future__ import annotations

import enum

from cryptography import x509

from core.errors import InvalidInput


class Reason(str, enum.Enum):
    unspecified = "unspecified"
    keyCompromise = "keyCompromise"
    cACompromise = "cACompromise"
    affiliationChanged = "affiliationChanged"
    superseded = "superseded"
    cessationOfOperation = "cessationOfOperation"
    certificateHold = "certificateHold"
    privilegeWithdrawn = "privilegeWithdrawn"
    aACompromise = "aACompromise"

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags[_FLAG_NAMES[self.value]]


_FLAG_NAMES = {
    "unspecified": "unspecified", "keyCompromise": "key_compromise", "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed", "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation", "certificateHold": "certificate_hold",
    "privilegeWithdrawn": "privilege_withdrawn", "aACompromise": "aa_compromise",
}


class Ground(str, enum.Enum):
    """Why an officer's certificate ends, in the words of the legal grounds."""

    officer_moved = "officer_moved"
    officer_retired = "officer_retired"
    unit_merged = "unit_merged"
    unit_dissolved = "unit_dissolved"
    key_replaced = "key_replaced"
    key_lost = "key_lost"
    key_exposed = "key_exposed"
    suspended = "suspended"


GROUND_TO_REASON: dict[Ground, Reason] = {
    Ground.officer_moved: Reason.affiliationChanged,
    Ground.officer_retired: Reason.affiliationChanged,
    Ground.unit_merged: Reason.cessationOfOperation,
    Ground.unit_dissolved: Reason.cessationOfOperation,
    Ground.key_replaced: Reason.superseded,
    Ground.key_lost: Reason.keyCompromise,
    Ground.key_exposed: Reason.keyCompromise,
    Ground.suspended: Reason.certificateHold,
}


def resolve_reason(reason: str | None, ground: str | None) -> Reason:
    """A reason given directly, or derived from a legal ground; both must agree when both given."""
    try:
        by_reason = Reason(reason) if reason else None
    except ValueError:
        raise InvalidInput(f"unknown revocation reason {reason!r}; use one of {[r.value for r in Reason]}") from None
    try:
        by_ground = GROUND_TO_REASON[Ground(ground)] if ground else None
    except ValueError:
        raise InvalidInput(f"unknown ground {ground!r}; use one of {[g.value for g in Ground]}") from None
    if by_reason and by_ground and by_reason is not by_ground:
        raise InvalidInput(f"ground {ground!r} means {by_ground.value}, which contradicts reason {reason!r}")
    return by_reason or by_ground or Reason.unspecified
