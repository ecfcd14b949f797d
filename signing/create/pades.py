"""PAdES levels on bytes: one signature (B-B/B-T), validation data (B-LT), archive timestamp (B-LTA).

Pure document work, no database: ``service.py`` decides what to sign and records it. Every step
appends an incremental update; signed bytes are never rewritten.

Speed (see PERFORMANCE.md): pyHanko normally builds the whole CMS twice, once as a dry run to
size the /Contents hole. kyso reserves a computed size instead (certificates + signature + a
timestamp token's worth), so the CMS is built once.
"""
from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore

from signing.create.pagetree import SigningWriter
from signing.errors import EncryptedPdf, TimestampUnavailable, UnreadablePdf
from signing.material import RevocationData

LEVEL_ORDER = {"B-B": 0, "B-T": 1, "B-LT": 2, "B-LTA": 3}


def open_writer(pdf: bytes, reader: PdfFileReader | None = None, *,
                flat_pages: int | None = None) -> IncrementalPdfFileWriter:
    """An incremental writer over the input, with unusable input turned into clear 4xx errors.
    ``reader``: the input already parsed (by intake), used instead of parsing it again; never reuse it.
    ``flat_pages``: intake found a flat page tree of this many pages (``pagetree``)."""
    try:
        writer: SigningWriter = (SigningWriter.from_reader(reader)  # type: ignore[assignment]
                                 if reader is not None else SigningWriter(BytesIO(pdf), strict=False))
        writer.flat_pages = flat_pages
    except PdfError as exc:
        message = str(exc)
        if "encrypt" in message.lower():
            raise EncryptedPdf("the PDF is encrypted; send the unprotected file "
                               "(kyso must see what it signs)") from None
        raise UnreadablePdf(f"this file is not a readable PDF ({message[:200]})") from None
    except Exception as exc:  # noqa: BLE001 - pyHanko raises plain errors on broken input
        raise UnreadablePdf(f"this file is not a readable PDF ({type(exc).__name__}: {str(exc)[:160]})") from None
    if writer.prev.encrypted:
        raise EncryptedPdf("the PDF is encrypted; send the unprotected file (kyso must see what it signs)")
    try:
        writer.root  # noqa: B018 - touches the catalogue, which broken files lack
        writer.prev.root["/Pages"]
    except Exception as exc:  # noqa: BLE001
        raise UnreadablePdf(f"the PDF has no readable page tree ({type(exc).__name__})") from None
    return writer


def existing_signatures(writer: IncrementalPdfFileWriter) -> int:
    try:
        return len(writer.prev.embedded_signatures)
    except Exception:  # noqa: BLE001 - a damaged earlier signature is still a signature
        return 1


@dataclass(frozen=True)
class SignatureJob:
    signer: signers.Signer
    field_name: str
    new_field: fields.SigFieldSpec | None
    stamp_style: Any
    text_params: dict[str, str]
    md_algorithm: str
    certify: bool
    reason: str | None
    location: str | None
    bytes_reserved: int


async def sign_once(writer: IncrementalPdfFileWriter, job: SignatureJob, timestamper: TimeStamper | None) -> bytes:
    meta = signers.PdfSignatureMetadata(
        field_name=job.field_name, md_algorithm=job.md_algorithm, subfilter=fields.SigSeedSubFilter.PADES,
        certify=job.certify, docmdp_permissions=fields.MDPPerm.FILL_FORMS, reason=job.reason, location=job.location,
        name=job.signer.subject_name,
    )
    pdf_signer = signers.PdfSigner(meta, job.signer, timestamper=timestamper, stamp_style=job.stamp_style,
                                   new_field_spec=job.new_field)
    out = BytesIO()
    try:
        await pdf_signer.async_sign_pdf(writer, bytes_reserved=job.bytes_reserved,
                                        appearance_text_params=job.text_params or None, output=out)
    except TimestampUnavailable:
        raise
    except Exception as exc:
        if timestamper is not None and _caused_by_timestamp(exc):
            raise TimestampUnavailable(f"the time-stamping authority did not answer: {exc}") from exc
        raise
    return out.getvalue()


def _caused_by_timestamp(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        if "Timestamp" in name or "Timeout" in name or isinstance(seen, (TimeoutError, ConnectionError, OSError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def supply_validation_data(writer: IncrementalPdfFileWriter, revinfo: RevocationData) -> None:
    """Put a DSS (certificates, OCSP responses, CRLs) into the revision being written."""
    DocumentSecurityStore.supply_dss_in_writer(writer, None, certs=list(revinfo.certs), ocsps=list(revinfo.ocsps),
                                               crls=list(revinfo.crls))


def add_validation_data(pdf: bytes, revinfo: RevocationData) -> bytes:
    """B-LT for a document already signed: the DSS in a new incremental update."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    supply_validation_data(writer, revinfo)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


async def add_document_timestamp(pdf: bytes, timestamper: TimeStamper, md_algorithm: str,
                                 bytes_reserved: int) -> bytes:
    """A document timestamp (RFC 3161 over the whole file): B-LTA, or B-T for a signature made without one."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    out = BytesIO()
    try:
        await signers.PdfTimeStamper(timestamper).async_timestamp_pdf(
            writer, md_algorithm, bytes_reserved=2 * bytes_reserved, output=out)  # hex digits
    except Exception as exc:
        if _caused_by_timestamp(exc):
            raise TimestampUnavailable(f"the time-stamping authority did not answer: {exc}") from exc
        raise
    return out.getvalue()

