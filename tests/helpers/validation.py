"""pyHanko's own validator, offline, as the judge of what kyso signed (tests only)."""
from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from asn1crypto import pem, x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature
from pyhanko.sign.validation.dss import NoDSSFoundError  # type: ignore[attr-defined]
from pyhanko_certvalidator import ValidationContext


@dataclass(frozen=True)
class Verdict:
    field: str
    intact: bool
    valid: bool
    trusted: bool
    timestamp_valid: bool | None
    modification_level: str
    docmdp_ok: bool | None
    bottom_line: bool
    md_algorithm: str
    signature_mechanism: str
    ess_v2: bool


def _root(root_pem: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(pem.unarmor(root_pem)[2])


def validate_all(pdf: bytes, root_pem: bytes, *, ltv: bool) -> list[Verdict]:
    """Every (non-timestamp) signature; with ``ltv`` revocation is hard-fail from the file's DSS, no fetching."""
    reader = PdfFileReader(BytesIO(pdf))
    root = _root(root_pem)
    if ltv:
        dss = DocumentSecurityStore.read_dss(reader)
        context = dss.as_validation_context({"trust_roots": [root], "allow_fetching": False,
                                             "revocation_mode": "hard-fail"})
    else:
        context = ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")
    verdicts = []
    for sig in reader.embedded_regular_signatures:
        status = validate_pdf_signature(sig, context, ts_validation_context=context)
        signer_info = sig.signer_info
        verdicts.append(Verdict(
            field=sig.field_name, intact=status.intact, valid=status.valid, trusted=status.trusted,
            timestamp_valid=None if status.timestamp_validity is None else status.timestamp_validity.valid,
            modification_level=status.modification_level.name if status.modification_level else "NONE",
            docmdp_ok=status.docmdp_ok, bottom_line=status.bottom_line, md_algorithm=status.md_algorithm,
            signature_mechanism=signer_info["signature_algorithm"]["algorithm"].native,
            ess_v2=any(a["type"].native == "signing_certificate_v2" for a in signer_info["signed_attrs"]),
        ))
    return verdicts


__all__ = ["NoDSSFoundError", "Verdict", "validate_all"]
