"""Reading and changing the registry of signed documents: search, fetch, withdraw, supersede,
and enrolling the images a visible signature shows. Every change is audited."""
from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass
from io import BytesIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import InvalidInput
from core.settings import Settings
from pki.context import PkiContext
from pki.store import get_credential
from pki.transparency import events as transparency
from signing.errors import DocumentStateConflict, UnknownDocument
from signing.registry import versions
from signing.registry.blobs import store_for
from signing.registry.models import DocumentFile, DocumentStatus, SignedDocument, StampImage

MAX_IMAGE_BYTES = 2 * 1_048_576


@dataclass(frozen=True)
class DocumentFilter:
    dossier_number: str | None = None
    commune_code: str | None = None
    document_type: str | None = None
    signer_serial: str | None = None
    credential_id: str | None = None
    signed_from: dt.datetime | None = None
    signed_to: dt.datetime | None = None
    status: str | None = None
    level: str | None = None
    upgrade_status: str | None = None
    # the caller's scope (a client token's communes and document types); None = no restriction
    commune_codes: frozenset[str] | None = None
    document_types: frozenset[str] | None = None
    limit: int = 50
    offset: int = 0


def list_documents(session: Session, flt: DocumentFilter) -> tuple[list[SignedDocument], int]:
    query = select(SignedDocument)
    for column, value in (
        (SignedDocument.dossier_number, flt.dossier_number), (SignedDocument.commune_code, flt.commune_code),
        (SignedDocument.document_type, flt.document_type), (SignedDocument.signer_serial, flt.signer_serial),
        (SignedDocument.credential_id, flt.credential_id), (SignedDocument.status, flt.status),
        (SignedDocument.level, flt.level), (SignedDocument.upgrade_status, flt.upgrade_status),
    ):
        if value is not None:
            query = query.where(column == value)
    if flt.commune_codes is not None:
        query = query.where(SignedDocument.commune_code.in_(sorted(flt.commune_codes)))
    if flt.document_types is not None:
        query = query.where(SignedDocument.document_type.in_(sorted(flt.document_types)))
    if flt.signed_from is not None:
        query = query.where(SignedDocument.signed_at >= flt.signed_from)
    if flt.signed_to is not None:
        query = query.where(SignedDocument.signed_at < flt.signed_to)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(SignedDocument.signed_at.desc(), SignedDocument.id)
                           .limit(flt.limit).offset(flt.offset)).scalars().all()
    return list(rows), int(total)


def get_document(session: Session, document_id: str) -> SignedDocument:
    doc = session.get(SignedDocument, document_id.strip().upper())
    if doc is None:
        raise UnknownDocument(f"no signed document with id {document_id!r}; check the id printed under the QR code")
    return doc


def get_file(session: Session, document_id: str, version: int | None = None) -> DocumentFile:
    doc = get_document(session, document_id)
    wanted = version or doc.version
    row = session.execute(select(DocumentFile).where(DocumentFile.document_id == doc.id,
                                                     DocumentFile.version == wanted)).scalar_one_or_none()
    if row is None:
        raise UnknownDocument(f"document {doc.id} has versions 1 to {doc.version}, not {wanted}")
    return row


def file_bytes(session: Session, settings: Settings, row: DocumentFile) -> bytes:
    """The PDF of version ``row``, rebuilt from the blob store and checked (``versions.read``)."""
    return versions.read(session, store_for(settings), row)


def find_by_hash(session: Session, sha256: str) -> tuple[SignedDocument, DocumentFile] | None:
    file = session.execute(select(DocumentFile).where(DocumentFile.sha256 == sha256.lower())
                           .limit(1)).scalar_one_or_none()
    if file is None:
        return None
    return get_document(session, file.document_id), file


def withdraw(ctx: PkiContext, document_id: str, reason: str, actor: str) -> SignedDocument:
    with transaction(ctx.sessions) as session:
        doc = _for_change(session, document_id)
        doc.status, doc.status_reason = DocumentStatus.WITHDRAWN, reason
        doc.status_changed_by, doc.status_changed_at = actor, clock.now()
        audit.record(session, actor=actor, action="signing:document:withdraw", subject=doc.id, reason=reason)
        transparency.record(session, transparency.document_withdrawn(
            document_id=doc.id, version=doc.version, commune=doc.commune_code, at=doc.status_changed_at),
            document_id=doc.id)
        session.flush()
        session.expunge(doc)
        return doc


def supersede(ctx: PkiContext, document_id: str, by: str, reason: str, actor: str) -> SignedDocument:
    with transaction(ctx.sessions) as session:
        doc = _for_change(session, document_id)
        replacement = get_document(session, by)
        if replacement.id == doc.id:
            raise InvalidInput("a document cannot supersede itself")
        if replacement.status != DocumentStatus.VALID:
            raise DocumentStateConflict(f"the replacement {replacement.id} is {replacement.status}")
        doc.status, doc.superseded_by, doc.status_reason = DocumentStatus.SUPERSEDED, replacement.id, reason
        doc.status_changed_by, doc.status_changed_at = actor, clock.now()
        audit.record(session, actor=actor, action="signing:document:supersede", subject=doc.id, by=replacement.id,
                     reason=reason)
        transparency.record(session, transparency.document_superseded(
            document_id=doc.id, version=doc.version, by=replacement.id, commune=doc.commune_code,
            at=doc.status_changed_at), document_id=doc.id)
        session.flush()
        session.expunge(doc)
        return doc


def _for_change(session: Session, document_id: str) -> SignedDocument:
    doc = get_document(session, document_id)
    session.refresh(doc, with_for_update=True)
    if doc.status != DocumentStatus.VALID:
        raise DocumentStateConflict(f"document {doc.id} is already {doc.status}"
                                    f"{' by ' + doc.superseded_by if doc.superseded_by else ''}")
    return doc


def enroll_image(ctx: PkiContext, credential_id: str, kind: str, png: bytes, actor: str) -> StampImage:
    """Store a specialist's handwritten signature or an agency's seal (transparent PNG) for a credential."""
    if kind not in ("signature", "seal"):
        raise InvalidInput("the image kind is 'signature' (handwritten) or 'seal' (agency seal)")
    _check_png(png)
    digest = hashlib.sha256(png).hexdigest()
    with transaction(ctx.sessions) as session:
        get_credential(session, credential_id)
        row = session.execute(select(StampImage).where(StampImage.credential_id == credential_id,
                                                       StampImage.kind == kind)).scalar_one_or_none()
        if row is None:
            row = StampImage(credential_id=credential_id, kind=kind, png=png, sha256=digest, enrolled_by=actor,
                             enrolled_at=clock.now())
            session.add(row)
        else:
            row.png, row.sha256, row.enrolled_by, row.enrolled_at = png, digest, actor, clock.now()
        audit.record(session, actor=actor, action=f"signing:image:{kind}:enroll", subject=credential_id, sha256=digest)
        session.flush()
        session.expunge(row)
        return row


def _check_png(png: bytes) -> None:
    if len(png) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"the image is {len(png):,} bytes; at most {MAX_IMAGE_BYTES:,}")
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise InvalidInput("the image must be a PNG (with a transparent background)")
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refused below, not just logged
            image = Image.open(BytesIO(png))
        with image:
            if image.width * image.height > 25_000_000:
                raise InvalidInput("the image is too large (more than 25 megapixels)")
            image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput("the image is too large (its header declares far more than 25 megapixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InvalidInput(f"the PNG could not be read ({exc})") from None
