"""Facts read from a PDF and its signatures, without judgement: the certificates a signature
carries, what its byte range covers, its timestamp token, its DocMDP and coverage facets, and the
small records the report shows. ``verification.py`` decides what they mean."""
from __future__ import annotations

import datetime as dt
import hashlib
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from core.cache import Cache
from signing.errors import EncryptedPdf, UnreadablePdf
from signing.registry.records import SignatureValue
from signing.verify.indications import Indication, SubIndication
from signing.verify.report import INDICATION_ORDER, CertificateInfo, CoverageInfo, RevocationInfo, SignatureReport, Text
from signing.verify.report_text import plain_message, quoted
from signing.verify.trust import TrustStore

if TYPE_CHECKING:
    from signing.verify.changes import ChangeReview


def open_pdf(pdf: bytes) -> PdfFileReader:
    if b"%PDF-" not in pdf[:1024]:
        raise UnreadablePdf("this file is not a PDF (no %PDF- header)")
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        if reader.encrypted:
            raise EncryptedPdf("the PDF is encrypted; kyso can only check unprotected files (ask the sender for "
                               "the original signed file)")
        reader.root  # noqa: B018
    except (EncryptedPdf, UnreadablePdf):
        raise
    except Exception as exc:  # noqa: BLE001 - pyHanko raises plain errors on broken input
        if "encrypt" in str(exc).lower():
            raise EncryptedPdf("the PDF is encrypted; kyso can only check unprotected files") from None
        raise UnreadablePdf(f"this file is not a readable PDF ({plain_message(str(exc))[:160]})") from None
    return reader


def dss_material(reader: PdfFileReader) -> dict[str, Any]:
    """Certificates, OCSP responses and CRLs the file's DSS carries (parsed once per file)."""
    from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp
    from pyhanko.pdf_utils.decode_limits import DecodePurpose

    try:
        dss = DocumentSecurityStore.read_dss(reader)
        return {
            "other_certs": list(dss.load_certs()),
            "ocsps": [asn1_ocsp.OCSPResponse.load(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE))
                      for ref in dss.ocsps],
            "crls": [asn1_crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL)) for ref in dss.crls],
        }
    except Exception:  # noqa: BLE001 - no DSS (NoDSSFoundError) or an unreadable one: no embedded revinfo
        return {}


def embedded_certificates(sig: EmbeddedPdfSignature) -> list[asn1_x509.Certificate]:
    """Certificates in the signature and in its timestamp token (kyso embeds both chains)."""
    certs = [c.chosen for c in sig.signed_data["certificates"] if c.name == "certificate"]
    for attr in sig.signer_info["unsigned_attrs"] or ():
        if attr["type"].native == "signature_time_stamp_token":
            for token in attr["values"]:
                certs += [c.chosen for c in token["content"]["certificates"] if c.name == "certificate"]
    return certs


def byte_range(sig: EmbeddedPdfSignature) -> tuple[int, int, int, int] | None:
    """The signature's /ByteRange as ``(start, length, start, length)``, or None when it is anything else.

    The value comes from the file, so an attacker chooses it: null, strings, a dictionary, reals, negative
    numbers, the wrong count, or a second range that starts inside the first. None of those describes bytes a
    signature covers, and each once escaped as a 500 from ``int(...)``.
    """
    raw = sig.byte_range
    if not isinstance(raw, list) or len(raw) != 4:
        return None
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in raw):  # NumberObject is an int; reals are not
        return None
    a, b, c, d = (int(x) for x in raw)
    if min(a, b, c, d) < 0 or c < a + b:
        return None
    return a, b, c, d


def covered_end(sig: EmbeddedPdfSignature) -> int:
    """Where the bytes a signature covers end (0 for a malformed /ByteRange: it covers nothing)."""
    br = byte_range(sig)
    return br[2] + br[3] if br is not None else 0


def coverage_of(sig: EmbeddedPdfSignature, integrity: dict[str, Any], reader: PdfFileReader,
                changes: ChangeReview) -> CoverageInfo:
    """What the signature covers and whether everything after it is accountable (``changes``)."""
    coverage = integrity.get("coverage")
    docmdp = sig.docmdp_level
    later = reader.xrefs.total_revisions - 1 - sig.signed_revision
    covers: Literal["entire_file", "entire_revision", "partial"] = (
        "entire_file" if coverage is not None and coverage.name == "ENTIRE_FILE" else
        "entire_revision" if coverage is not None and coverage.name == "ENTIRE_REVISION" else "partial")
    level = changes.level_after(sig.signed_revision)
    mod = level.name if later > 0 or changes.trailing else "NONE"
    allowed = covers != "partial" and not changes.after(sig.signed_revision)
    return CoverageInfo(covers=covers, revision=sig.signed_revision + 1, later_revisions=max(0, later),
                        modification_level=mod, docmdp_permission=int(docmdp.value) if docmdp else None,
                        changes_allowed=allowed)


def locks_fields(sig: EmbeddedPdfSignature) -> bool:
    """Whether the signature locks form fields (/FieldMDP), which later changes may have broken."""
    try:
        return sig.fieldmdp is not None
    except Exception:  # noqa: BLE001 - an unreadable lock dictionary is still a lock
        return True


def level_of(timestamped: bool, has_dss: bool, archived: bool) -> str:
    if not timestamped:
        return "B-B"
    if not has_dss:
        return "B-T"
    return "B-LTA" if archived else "B-LT"


def crypto_check(signer_info: Any, cert: asn1_x509.Certificate | None, content_type: str,
                 digest: bytes) -> tuple[bool, bool]:
    """(intact, valid): the signed digest matches, and the signature over the attributes verifies."""
    if cert is None:
        return False, False
    return validate_sig_integrity(signer_info, cert, expected_content_type=content_type, actual_digest=digest)


def digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm.replace("_", "-") if algorithm.startswith("sha3") else algorithm, data).digest()


def timestamp_token(signer_info: Any) -> Any:
    for attr in signer_info["unsigned_attrs"] or ():
        if attr["type"].native == "signature_time_stamp_token":
            return attr["values"][0]
    return None


def signing_time_attr(signer_info: Any) -> dt.datetime | None:
    for attr in signer_info["signed_attrs"] or ():
        if attr["type"].native == "signing_time":
            moment: dt.datetime | None = attr["values"][0].native
            return moment
    return None


def common_name(cert: asn1_x509.Certificate) -> str | None:
    for rdn in cert.subject.chosen:
        for attr in rdn:
            if attr["type"].native == "common_name":
                return str(attr["value"].native)
    return None


def subject_attr(cert: asn1_x509.Certificate, name: str) -> str | None:
    value = cert.subject.native.get(name)
    return str(value) if value is not None else None


def cert_info(cert: asn1_x509.Certificate, cache: Cache[bytes, CertificateInfo] | None = None) -> CertificateInfo:
    """Kept by fingerprint in ``cache`` (the verifier's): the same signers appear on document after document."""
    known = cache.get(cert.sha256) if cache is not None else None
    if known is None:
        known = CertificateInfo(
            subject=cert.subject.human_friendly, common_name=common_name(cert), title=subject_attr(cert, "title"),
            organization=subject_attr(cert, "organization_name"), serial=format(cert.serial_number, "X"),
            issuer=cert.issuer.human_friendly, not_before=cert.not_valid_before, not_after=cert.not_valid_after,
            sha256=cert.sha256.hex(), unit=subject_attr(cert, "organizational_unit_name"),
        )
        if cache is not None:
            cache.put(cert.sha256, known)
    return known


def anchor_label(anchor: Any, trust: TrustStore) -> str | None:
    if anchor is None:
        return None
    cert = getattr(anchor, "certificate", None) or getattr(getattr(anchor, "authority", None), "certificate", None)
    if isinstance(cert, asn1_x509.Certificate):
        return trust.label(cert)
    return str(getattr(anchor, "authority", anchor))


def worst(reports: list[SignatureReport]) -> tuple[Indication, SubIndication | None]:
    worst = max(reports, key=lambda r: INDICATION_ORDER[r.indication], default=None)
    return (worst.indication, worst.sub_indication) if worst else (Indication.INDETERMINATE, None)


def format_failure(sig: EmbeddedPdfSignature, exc: Exception) -> SignatureReport:
    field = quoted(sig.field_name)  # the field name and the parser's message carry the file's own words
    detail = plain_message(str(exc))
    text = Text(f"Chữ ký {field} bị hỏng hoặc không đúng định dạng.",
                f"Signature {field} is damaged or malformed" + (f" ({quoted(detail)})." if detail else "."))
    return SignatureReport(
        field_name=str(sig.field_name), kind="signature", indication=Indication.TOTAL_FAILED,
        sub_indication=SubIndication.FORMAT_FAILURE,
        intact=False, signer=None, chain=(), trust_anchor=None, claimed_signing_time=None, timestamp=None,
        revocation=RevocationInfo("not_checked", "none"),
        coverage=CoverageInfo("partial", sig.signed_revision + 1, 0, "OTHER", None, False), level=None,
        digest_algorithm="?", signature_algorithm="?", summary=text,
    )


def first_signature(embedded: list[EmbeddedPdfSignature]) -> EmbeddedPdfSignature | None:
    """The earliest signature a person or office made (a document timestamp only when there is none)."""
    regular = [s for s in embedded if s.sig_object_type != "/DocTimeStamp"] or embedded
    return min(regular, key=lambda s: s.signed_revision, default=None)


def signed_revision(pdf: bytes, *, max_signatures: int, max_revisions: int) -> tuple[bytes, str, int]:
    """What the first signer signed: the byte prefix of the file that is the revision their signature
    covers (every incremental update ends a complete PDF), its field name and 1-based revision.

    A relying party shown "changed after signing" opens this to see what was really signed; no
    registry is needed, so it works for foreign documents as for kyso's own. The same limits as
    verification bound the work a public caller can ask for."""
    from signing.verify.limits import check_limits

    reader = open_pdf(pdf)
    check_limits(reader, max_signatures=max_signatures, max_revisions=max_revisions)
    try:
        embedded = [s for s in reader.embedded_signatures if s.sig_object_type != "/DocTimeStamp"]
    except Exception:  # noqa: BLE001 - a broken AcroForm is the file's fault
        raise UnreadablePdf("the PDF's signature fields cannot be read") from None
    for sig in sorted(embedded, key=lambda s: s.signed_revision):
        end = covered_end(sig)  # 0 for a malformed /ByteRange: that signature covers nothing
        if 0 < end <= len(pdf):
            return pdf[:end], str(sig.field_name), sig.signed_revision + 1
    raise UnreadablePdf("this PDF has no signature whose signed part can be extracted", code="no_signature")


def signature_values(pdf: bytes, after: int = 0) -> list[SignatureValue]:
    """The signatures and document timestamps in ``pdf``, in signing order, whose ``/Contents`` hole
    starts at or after byte ``after``: with ``after = len(input)`` exactly those an incremental update
    of ``input`` added (kyso only appends), never a foreign signature the input already carried."""
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    found = []
    for sig in reader.embedded_signatures:
        br = byte_range(sig)
        if br is None or br[1] < after:
            continue
        timestamp = sig.sig_object_type == "/DocTimeStamp"
        found.append(SignatureValue(value=sig.signer_info["signature"].native,
                                    source="timestamp" if timestamp else "sign", signer_serial=_serial_of(sig)))
    return found


def _serial_of(sig: EmbeddedPdfSignature) -> str | None:
    try:
        return format(sig.signer_cert.serial_number, "X")
    except Exception:  # noqa: BLE001 - a CMS without its signer's certificate: the value still counts
        return None
