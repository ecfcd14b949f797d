"""Signing errors; each says what was wrong with the document or request and what to do."""
from core.errors import Conflict, Internal, InvalidInput, NotFound, PermissionDenied, Unavailable


class UnreadablePdf(InvalidInput):
    """Not a PDF, or damaged beyond what a reader can repair."""

    code = "unreadable_pdf"


class EncryptedPdf(InvalidInput):
    """Encrypted PDFs are refused: the signer cannot see what it signs."""

    code = "encrypted_pdf"


class PdfTooLarge(InvalidInput):
    code = "pdf_too_large"


class BadAppearance(InvalidInput):
    """Placement or appearance options that cannot be honoured (unknown field, page out of range…)."""

    code = "bad_appearance"


class SigningRefused(PermissionDenied):
    """The signer may not sign this document (certificate revoked, wrong profile, order of signatures)."""

    code = "signing_refused"


class UnknownDocument(NotFound):
    code = "unknown_document"


class DocumentStateConflict(Conflict):
    """E.g. withdrawing a document that is already withdrawn."""

    code = "document_state_conflict"


class TimestampUnavailable(Unavailable):
    """The time-stamping authority did not answer in time."""

    code = "timestamp_unavailable"


class SealFieldsInvalid(InvalidInput):
    """Seal fields the document type does not list, a required one missing, or a value too long for the QR code."""

    code = "seal_fields_invalid"


class SealTokenInvalid(InvalidInput):
    """A QR offline-seal token that does not parse; ``details["reason"]`` says how (malformed, unsupported_version)."""

    code = "seal_token_invalid"


class TooComplex(InvalidInput):
    """More signatures, revisions or work than kyso verifies for one file: refused with 422, so one
    hostile file cannot hold the public verifier."""

    code = "too_complex"


class VerificationBusy(Unavailable):
    """Every public verification slot stayed busy for the whole queue wait; ``retry_after`` (seconds) is
    when trying again is worth it (HTTP 503 + Retry-After)."""

    code = "verification_busy"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retry_after_seconds=round(retry_after, 1))
        self.retry_after = retry_after


class PdfNoPages(UnreadablePdf):
    """The page tree is missing, null or empty: there is nothing to sign and nothing to repair."""

    code = "pdf_no_pages"


class PdfPageTreeBroken(UnreadablePdf):
    """The page tree holds objects that are not pages, or loops: a repair would invent pages."""

    code = "pdf_page_tree_broken"


class SignedPdfDamaged(UnreadablePdf):
    """A PDF that carries signatures and needs repair: repairing it would break those signatures."""

    code = "signed_pdf_damaged"


class CertifiedPdfLocked(InvalidInput):
    """A PDF certified with DocMDP P=1 ("no changes allowed"): any signature added to it breaks its
    certification, however sound the file is."""

    code = "certified_pdf_no_changes"


class SelfCheckFailed(Internal):
    """kyso's own signed output failed kyso's own check: a bug in kyso, never the caller's fault (HTTP 500).
    Nothing was registered; the audit log names the document and the check that failed."""

    code = "signing_self_check_failed"


class StoredFileDamaged(Internal):
    """A stored version could not be rebuilt byte for byte: a blob is missing, or its bytes (or the rebuilt
    file's) do not hash to what the registry recorded. kyso answers this error, never other bytes (HTTP 500);
    ``details`` name the document, the version and the blob."""

    code = "stored_file_damaged"
