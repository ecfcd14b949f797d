"""The verdicts a verification reports: ETSI EN 319 102-1 indications and sub-indications.

pyHanko names the same things (``pyhanko.sign.ades.report``): ``AdESStatus`` (PASSED, FAILED,
INDETERMINATE) and the sub-indications ``AdESFailure`` / ``AdESIndeterminate``, as plain enums with
integer values. kyso reports the standard's strings ("TOTAL-PASSED", "TOTAL-FAILED",
"INDETERMINATE" and the sub-indication names) in JSON, HTML, PDF reports and the API, so its enums
are ``StrEnum``s whose values are exactly those strings: they compare equal to them, serialise as
them, and ``of`` maps pyHanko's members onto them.
"""
from __future__ import annotations

from enum import StrEnum

from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESStatus, AdESSubIndic


class Indication(StrEnum):
    TOTAL_PASSED = "TOTAL-PASSED"
    INDETERMINATE = "INDETERMINATE"
    TOTAL_FAILED = "TOTAL-FAILED"

    @property
    def severity(self) -> int:
        """0 passed, 1 indeterminate, 2 failed: a file is as good as its worst signature."""
        return _SEVERITY[self]

    @classmethod
    def of(cls, status: AdESStatus) -> Indication:
        return _FROM_ADES[status]


_SEVERITY = {Indication.TOTAL_PASSED: 0, Indication.INDETERMINATE: 1, Indication.TOTAL_FAILED: 2}
_FROM_ADES = {AdESStatus.PASSED: Indication.TOTAL_PASSED, AdESStatus.INDETERMINATE: Indication.INDETERMINATE,
              AdESStatus.FAILED: Indication.TOTAL_FAILED}


class SubIndication(StrEnum):
    """Every sub-indication pyHanko knows (same names), and kyso's own NO_SIGNATURE_FOUND."""

    # TOTAL-FAILED (AdESFailure)
    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    NOT_YET_VALID = "NOT_YET_VALID"  # also an INDETERMINATE one
    # INDETERMINATE (AdESIndeterminate)
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    EXPIRED = "EXPIRED"
    POLICY_PROCESSING_ERROR = "POLICY_PROCESSING_ERROR"
    SIGNATURE_POLICY_NOT_AVAILABLE = "SIGNATURE_POLICY_NOT_AVAILABLE"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    REVOCATION_OUT_OF_BOUNDS_NO_POE = "REVOCATION_OUT_OF_BOUNDS_NO_POE"
    OUT_OF_BOUNDS_NOT_REVOKED = "OUT_OF_BOUNDS_NOT_REVOKED"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    NO_POE = "NO_POE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
    GENERIC = "GENERIC"
    # kyso's: a file with no signature at all
    NO_SIGNATURE_FOUND = "NO_SIGNATURE_FOUND"

    @classmethod
    def of(cls, subindic: AdESSubIndic) -> SubIndication:
        return cls(subindic.name)  # type: ignore[attr-defined]


# every pyHanko sub-indication has its member (a pyHanko upgrade that adds one fails here, at import)
_MISSING = {m.name for e in (AdESFailure, AdESIndeterminate) for m in e} - {m.value for m in SubIndication}
if _MISSING:
    raise ImportError(f"sub-indications pyHanko knows and kyso does not: {sorted(_MISSING)}")

__all__ = ["Indication", "SubIndication"]
