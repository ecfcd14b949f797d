"""May this signer sign this document, for this commune, at this step? Allow or deny, with the rule.

Rules are applied in a fixed order and the first refusal decides (step-ca style):
1. ``signers``: the certificate's profile, and the rule's titles and units when it names them;
2. ``approval_chain``: the signature at step k must be by the chain's k-th signer rule;
3. ``jurisdiction``: a commune's signers sign for their own commune; in a province that turned on
   reception independent of administrative boundaries, any commune of that province may.
The decision names the rule that allowed or refused, so the audit log and the error say why.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from .documents import DocumentPolicy, DocumentType, SignerRule

Reception = Literal["own-commune", "province-wide", "unbound"]


@dataclass(frozen=True)
class SignerFacts:
    """What the policy looks at in a signer's certificate (and kyso's record of it)."""

    profile: str
    commune_code: str | None
    province_code: str | None
    title: str | None = None
    unit: str | None = None  # organisationalUnitName


@dataclass(frozen=True)
class Target:
    document_type: str
    commune_code: str
    province_code: str | None
    step: int = 0  # signatures already on the document


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # e.g. "construction-permit.signers.chairman", "jurisdiction.province-wide:01"
    reason: str
    signer_rule: str | None = None
    reception: Reception | None = None


def _norm(text: str | None) -> str:
    return unicodedata.normalize("NFC", text or "").strip().casefold()


def _matches(rule: SignerRule, signer: SignerFacts) -> bool:
    if rule.profile != signer.profile:
        return False
    if rule.titles and _norm(signer.title) not in {_norm(t) for t in rule.titles}:
        return False
    return not rule.units or _norm(signer.unit) in {_norm(u) for u in rule.units}


def decide(policy: DocumentPolicy, signer: SignerFacts, target: Target) -> Decision:
    doc_type: DocumentType = policy.get(target.document_type)
    prefix = doc_type.name
    candidates = [rule for rule in doc_type.signers if _matches(rule, signer)]
    if not candidates:
        wanted = "; ".join(f"{r.name}: {r.profile}" + (f" titled {', '.join(r.titles)}" if r.titles else "")
                           + (f" in {', '.join(r.units)}" if r.units else "") for r in doc_type.signers)
        return Decision(False, f"{prefix}.signers", f"a {signer.profile} certificate"
                        + (f" titled {signer.title!r}" if signer.title else "")
                        + f" may not sign {doc_type.name} (policy {policy.version} allows {wanted})")
    rule = candidates[0]
    if doc_type.approval_chain:
        if target.step >= len(doc_type.approval_chain):
            return Decision(False, f"{prefix}.approval_chain", f"{doc_type.name} takes {len(doc_type.approval_chain)} "
                            f"signatures ({' → '.join(doc_type.approval_chain)}); it already has {target.step}")
        expected = doc_type.approval_chain[target.step]
        chosen = next((r for r in candidates if r.name == expected), None)
        if chosen is None:
            return Decision(False, f"{prefix}.approval_chain",
                            f"signature {target.step + 1} of {doc_type.name} must be "
                            f"by {expected!r} ({' → '.join(doc_type.approval_chain)}); this signer is "
                            f"{', '.join(r.name for r in candidates)}")
        rule = chosen
    signer_rule = f"{prefix}.signers.{rule.name}"
    if signer.commune_code is None:
        return Decision(True, signer_rule, "the certificate is not bound to a commune", rule.name, "unbound")
    if signer.commune_code == target.commune_code:
        return Decision(True, "jurisdiction.own-commune", f"signs for its own commune {target.commune_code}",
                        rule.name, "own-commune")
    province = target.province_code
    if (province and province == signer.province_code
            and province in policy.jurisdiction.independent_reception_provinces):
        return Decision(True, f"jurisdiction.province-wide:{province}",
                        f"province {province} receives dossiers independent of administrative boundaries: commune "
                        f"{signer.commune_code} may sign for {target.commune_code}", rule.name, "province-wide")
    return Decision(False, "jurisdiction.own-commune",
                    f"the signer belongs to commune {signer.commune_code} and may sign only for it, not for "
                    f"{target.commune_code}" + (f" (province {province} has not turned on reception independent of "
                                                "administrative boundaries)" if province else ""))
