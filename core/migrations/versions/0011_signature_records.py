"""signature_records: the registry found by the signature value, backfilled from the stored files

Every stored document version is read (a page of files at a time, never the whole registry in
memory) and each signature in it is recorded under the earliest version that contains it: a
regular signature when its signer's certificate is one of kyso's (``certificates.sha256``), a
document timestamp when it follows such a signature (kyso added it: what precedes kyso's first
signature came with the input). Documents registered before this revision keep verifying.

Self-contained on purpose (pyHanko and SQLAlchemy Core only): a migration must not change when
the application's modules do.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 01:20:00.000000
"""
import datetime as dt
import hashlib
import logging
from io import BytesIO
from typing import Any

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
PAGE = 50  # stored files read per query

_records = sa.table(
    'signature_records', sa.column('sha256', sa.String), sa.column('document_id', sa.String),
    sa.column('version', sa.Integer), sa.column('source', sa.String), sa.column('signer_serial', sa.String),
    sa.column('credential_id', sa.String), sa.column('created_at', core.db.UTCDateTime(timezone=True)),
)
_files = sa.table('document_files', sa.column('id', sa.Integer), sa.column('document_id', sa.String),
                  sa.column('version', sa.Integer), sa.column('created_at', core.db.UTCDateTime(timezone=True)),
                  sa.column('pdf', sa.LargeBinary))


def upgrade() -> None:
    op.create_table(
        'signature_records',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('document_id', sa.String(length=16), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('signer_serial', sa.String(length=64), nullable=True),
        sa.Column('credential_id', sa.String(length=40), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sha256'),
    )
    with op.batch_alter_table('signature_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signature_records_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_signature_records_credential_id'), ['credential_id'], unique=False)
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table('signature_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signature_records_credential_id'))
        batch_op.drop_index(batch_op.f('ix_signature_records_document_id'))
    op.drop_table('signature_records')


def _backfill(conn: sa.Connection) -> None:
    # kyso's certificates by the SHA-256 of their DER, with the credential holding the key
    # a comprehension, not dict(): a result has .keys() (its column names), so dict() would take it for a mapping
    kyso: dict[str, str | None] = {sha: credential for sha, credential in conn.execute(sa.text(  # noqa: C416
        "SELECT c.sha256, cr.id FROM certificates c LEFT JOIN credentials cr ON cr.key_ref = c.key_ref"))}
    last, files, recorded = 0, 0, 0
    while True:
        page = conn.execute(sa.select(_files.c.id, _files.c.document_id, _files.c.version, _files.c.created_at,
                                      _files.c.pdf).where(_files.c.id > last).order_by(_files.c.id).limit(PAGE)).all()
        if not page:
            break
        for file_id, document_id, version, created_at, pdf in page:
            last, files = file_id, files + 1
            rows = _rows_of(pdf, kyso, document_id, version, created_at)
            if not rows:
                continue
            known = set(conn.execute(sa.select(_records.c.sha256)
                                     .where(_records.c.sha256.in_([r['sha256'] for r in rows]))).scalars())
            new = [r for r in rows if r['sha256'] not in known]
            if new:
                conn.execute(_records.insert(), new)
                recorded += len(new)
    log.info("signature_records: %d signature values recorded from %d stored files", recorded, files)


def _rows_of(pdf: bytes, kyso: dict[str, str | None], document_id: str, version: int,
             created_at: dt.datetime) -> list[dict[str, Any]]:
    """The kyso signatures and the document timestamps after the first of them in one stored file."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        signatures = PdfFileReader(BytesIO(pdf), strict=False).embedded_signatures
    except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the upgrade
        log.warning("signature_records: document %s version %s unreadable (%s)", document_id, version, exc)
        return []
    rows: list[dict[str, Any]] = []
    for sig in signatures:
        try:
            value = sig.signer_info['signature'].native
            cert = sig.signer_cert
            timestamp = sig.sig_object_type == '/DocTimeStamp'
        except Exception as exc:  # noqa: BLE001
            log.warning("signature_records: a signature of document %s version %s unreadable (%s)",
                        document_id, version, exc)
            continue
        fingerprint = hashlib.sha256(cert.dump()).hexdigest()
        if (not timestamp and fingerprint not in kyso) or (timestamp and not rows):
            continue  # a foreign signature, or a timestamp the input already carried
        rows.append({'sha256': hashlib.sha256(value).hexdigest(), 'document_id': document_id, 'version': version,
                     'source': 'timestamp' if timestamp else 'sign', 'signer_serial': format(cert.serial_number, 'X'),
                     'credential_id': None if timestamp else kyso[fingerprint], 'created_at': created_at})
    return rows
