"""Request and response models of the signing and registry routes."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from signing.create.service import AppearanceOptions, SignRequest, SignResult
from signing.registry.models import SignedDocument


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppearanceIn(_In):
    visible: bool = Field(default=True, description="false: an invisible signature (no stamp)")
    kind: Literal["person", "seal", "copy"] | None = Field(
        default=None, description="person: handwritten-signature image between title and name; seal: the agency "
        "seal over the left third of the person's signature (after the person signed); copy: a text block at the "
        "top right of page 1 (SAO Y, SAO LỤC, TRÍCH SAO, attachments). Default: from the document type")
    field_name: str | None = Field(default=None, max_length=100, description="Sign this existing empty field")
    page: int | None = Field(default=None, description="1-based page; -1 is the last page")
    box: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] | None = Field(  # NaN was "the PDF is damaged"
        default=None, description="x1, y1, x2, y2 in PDF points")
    title: str | None = Field(default=None, max_length=200, description="e.g. 'KT. CHỦ TỊCH\\nPHÓ CHỦ TỊCH'")
    copy_form: str | None = Field(default=None, max_length=40, description="SAO Y, SAO LỤC or TRÍCH SAO")
    document_number: str | None = Field(default=None, max_length=100)


class SignMetadata(_In):
    document_type: str = Field(description="A type from policies (GET /api/v1/document-types)")
    commune_code: str = Field(pattern=r"^\d{5}$", description="The commune or ward the document is issued for")
    credential_id: str = Field(max_length=40, description="The signer's credential")
    dossier_number: str | None = Field(default=None, max_length=100)
    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] | None = Field(default=None,
                                                               description="Default: the document type's")
    certify: bool | None = Field(default=None, description="First signature certifies (DocMDP); default: policy")
    rsa_padding: Literal["pss", "pkcs1v15"] | None = Field(default=None, description="RSA keys: PSS unless told")
    reason: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    appearance: AppearanceIn = Field(default_factory=AppearanceIn)
    seal_fields: dict[str, str] = Field(
        default_factory=dict, max_length=16,
        description="Facts signed into the QR code's offline seal, by the names the document type lists "
        "(GET /api/v1/document-types, `seal_fields`), e.g. {\"permit_no\": \"12/GPXD\", \"owner\": \"…\"}; "
        "at most 80 characters each. Unknown names or a missing required one are refused (422).")
    sad: str | None = Field(
        default=None, max_length=200,
        description="Signature Activation Data from POST /csc/v2/credentials/authorize with "
        "`\"kyso\": {\"purpose\": \"documents\"}`, bound to the base64 SHA-256 of this exact PDF (in a batch: of "
        "every PDF signed under it); a SAD authorized for CSC signHash is refused (`sad_wrong_purpose`). Required "
        "with a specialist's credential; not needed with an organisation seal. Single use, valid 5 minutes.")

    def to_request(self, pdf: bytes) -> SignRequest:
        # the SAD is not part of the request's identity: a retry with the same Idempotency-Key and a
        # new (or no) SAD is the same request and returns the first result
        data = self.model_dump(exclude={"appearance", "sad"})
        return SignRequest(pdf=pdf, appearance=AppearanceOptions(**self.appearance.model_dump()), **data)


class BatchMetadata(_In):
    """Shared fields for every file, and optional per-file overrides in file order."""

    defaults: SignMetadata
    items: list[dict[str, Any]] = Field(default_factory=list,
                                        description="Per-file overrides of `defaults`, e.g. dossier_number")


class SignedOut(BaseModel):
    document_id: str
    verify_url: str
    level: str
    requested_level: str
    upgrade_pending: bool
    sha256: str
    signer_serial: str
    signed_at: dt.datetime
    version: int
    replayed: bool
    offline_seal: str | None = Field(default=None, description="The signed facts the QR code carries after '#'")
    stamp_on_new_page: bool = Field(default=False, description=(
        "True when no page had a free place for the visible stamp (text, images and drawings are never "
        "covered): the stamp is on a blank page added at the end of the document"))
    pdf_base64: str | None = None

    @classmethod
    def of(cls, result: SignResult, base_url: str, *, with_pdf: bool) -> SignedOut:
        import base64

        return cls(document_id=result.document_id, verify_url=f"{base_url}/v/{result.document_id}", level=result.level,
                   requested_level=result.requested_level, upgrade_pending=result.pending_upgrade,
                   sha256=result.sha256, signer_serial=result.signer_serial, signed_at=result.signed_at,
                   version=result.version, replayed=result.replayed, offline_seal=result.offline_seal,
                   stamp_on_new_page=result.stamp_on_new_page,
                   pdf_base64=base64.b64encode(result.pdf).decode() if with_pdf else None)


class BatchItemOut(BaseModel):
    index: int
    filename: str | None
    ok: bool
    result: SignedOut | None = None
    error: dict[str, Any] | None = None


class BatchOut(BaseModel):
    signed: int
    failed: int
    items: list[BatchItemOut]


class DocumentOut(BaseModel):
    document_id: str
    document_type: str
    commune_code: str
    dossier_number: str | None
    credential_id: str
    signer_serial: str
    signer_name: str
    signed_at: dt.datetime
    policy_version: str
    level: str
    requested_level: str
    upgrade_status: str
    upgrade_attempts: int
    last_error: str | None
    sha256: str
    version: int
    signatures: int
    status: str
    superseded_by: str | None
    status_reason: str | None
    status_changed_by: str | None
    status_changed_at: dt.datetime | None
    verify_url: str
    offline_seal: str | None = None

    @classmethod
    def of(cls, doc: SignedDocument, base_url: str) -> DocumentOut:
        return cls(document_id=doc.id, document_type=doc.document_type, commune_code=doc.commune_code,
                   dossier_number=doc.dossier_number, credential_id=doc.credential_id, signer_serial=doc.signer_serial,
                   signer_name=doc.signer_name, signed_at=doc.signed_at, policy_version=doc.policy_version,
                   level=doc.level, requested_level=doc.requested_level, upgrade_status=doc.upgrade_status,
                   upgrade_attempts=doc.upgrade_attempts, last_error=doc.last_error, sha256=doc.sha256,
                   version=doc.version, signatures=doc.signatures, status=doc.status, superseded_by=doc.superseded_by,
                   status_reason=doc.status_reason, status_changed_by=doc.status_changed_by,
                   status_changed_at=doc.status_changed_at, verify_url=f"{base_url}/v/{doc.id}",
                   offline_seal=doc.offline_seal)


class DocumentList(BaseModel):
    total: int
    items: list[DocumentOut]


class WithdrawIn(_In):
    reason: str = Field(min_length=3, max_length=500, description="Shown to citizens who scan the QR code")


class SupersedeIn(_In):
    by: str = Field(min_length=4, max_length=16, description="The id of the document that replaces this one")
    reason: str = Field(min_length=3, max_length=500)


class SealFieldOut(BaseModel):
    name: str
    label_vi: str
    label_en: str
    required: bool
    mask: bool


class DocumentTypeOut(BaseModel):
    name: str
    title_vi: str
    title_en: str
    level: str
    qr: bool
    appearance: str
    certify: bool
    seal_fields: list[SealFieldOut] = Field(default_factory=list,
                                            description="Facts the QR code's offline seal carries")
