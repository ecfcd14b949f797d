"""document blobs: versions stored as what kyso appended over their parent, in a content-addressed blob store

The ``blobs`` table holds content-addressed bytes (``signing/registry/blobs.py``). Each stored version
moves out of ``document_files.pdf``: a version whose bytes start with its previous version's becomes a
``delta`` (the appended tail, ``base_sha256`` = the previous version's SHA-256); any other (every first
version) becomes ``whole``. Every SHA-256 is checked on the way; the ``pdf`` column is then dropped.
Rows are read a page at a time, never the whole registry in memory. Downgrade rebuilds ``pdf``.

Self-contained on purpose (SQLAlchemy Core only): a migration must not change when the application's
modules do.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:30:00.000000
"""
import datetime as dt
import hashlib
import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

import core.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
PAGE = 50  # stored files read per query

_blobs = sa.table('blobs', sa.column('sha256', sa.String), sa.column('size', sa.Integer),
                  sa.column('data', sa.LargeBinary), sa.column('created_at', core.db.UTCDateTime(timezone=True)))
_files = sa.table('document_files', sa.column('id', sa.Integer), sa.column('document_id', sa.String),
                  sa.column('version', sa.Integer), sa.column('sha256', sa.String), sa.column('pdf', sa.LargeBinary),
                  sa.column('storage', sa.String), sa.column('blob_sha256', sa.String),
                  sa.column('base_sha256', sa.String))


def upgrade() -> None:
    op.create_table(
        'blobs',
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('sha256'),
    )
    op.create_index(op.f('ix_blobs_created_at'), 'blobs', ['created_at'], unique=False)
    with op.batch_alter_table('document_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('storage', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('blob_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('base_sha256', sa.String(length=64), nullable=True))
    _move(op.get_bind())
    with op.batch_alter_table('document_files', schema=None) as batch_op:
        batch_op.alter_column('storage', existing_type=sa.String(length=8), nullable=False)
        batch_op.alter_column('blob_sha256', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f('ix_document_files_blob_sha256'), ['blob_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_files_base_sha256'), ['base_sha256'], unique=False)
        batch_op.drop_column('pdf')


def _pages(conn: sa.Connection, *columns: Any) -> Any:
    """The stored files in (document, version) order, a page at a time."""
    last: tuple[str, int] = ("", 0)
    while True:
        after = sa.or_(_files.c.document_id > last[0],
                       sa.and_(_files.c.document_id == last[0], _files.c.version > last[1]))
        page = conn.execute(sa.select(_files.c.id, _files.c.document_id, _files.c.version, _files.c.sha256, *columns)
                            .where(after).order_by(_files.c.document_id, _files.c.version).limit(PAGE)).all()
        if not page:
            return
        yield from page
        last = (page[-1].document_id, page[-1].version)


def _put(conn: sa.Connection, data: bytes, now: dt.datetime) -> str:
    sha = hashlib.sha256(data).hexdigest()
    if conn.execute(sa.select(_blobs.c.sha256).where(_blobs.c.sha256 == sha)).first() is None:
        conn.execute(_blobs.insert().values(sha256=sha, size=len(data), data=data, created_at=now))
    return sha


def _move(conn: sa.Connection) -> None:
    now = dt.datetime.now(dt.UTC)
    previous: tuple[str, bytes] | None = None  # the last version read: (document id, bytes)
    counts = {"whole": 0, "delta": 0}
    for row in _pages(conn, _files.c.pdf):
        pdf = bytes(row.pdf)
        if hashlib.sha256(pdf).hexdigest() != row.sha256:
            raise RuntimeError(f"document {row.document_id} version {row.version}: the stored bytes do not hash to "
                               "the recorded SHA-256; restore the database from a backup before upgrading")
        parent = previous[1] if previous is not None and previous[0] == row.document_id else None
        values: dict[str, str | None]
        if parent is not None and len(pdf) > len(parent) and pdf.startswith(parent):
            values = {"storage": "delta", "blob_sha256": _put(conn, pdf[len(parent):], now),
                      "base_sha256": hashlib.sha256(parent).hexdigest()}
        else:
            values = {"storage": "whole", "blob_sha256": _put(conn, pdf, now), "base_sha256": None}
        counts[str(values["storage"])] += 1
        conn.execute(_files.update().where(_files.c.id == row.id).values(**values))
        previous = (row.document_id, pdf)
    log.info("document blobs: %d versions stored whole, %d as appended tails", counts["whole"], counts["delta"])


def downgrade() -> None:
    with op.batch_alter_table('document_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pdf', sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    known: dict[str, bytes] = {}  # the current document's versions by SHA-256
    current = ""
    for row in _pages(conn, _files.c.storage, _files.c.blob_sha256, _files.c.base_sha256):
        if row.document_id != current:
            known, current = {}, row.document_id
        blob = conn.execute(sa.select(_blobs.c.data).where(_blobs.c.sha256 == row.blob_sha256)).scalar_one()
        if row.storage == "whole":
            pdf = bytes(blob)
        else:
            base = known.get(row.base_sha256) or conn.execute(
                sa.select(_blobs.c.data).where(_blobs.c.sha256 == row.base_sha256)).scalar_one()
            pdf = bytes(base) + bytes(blob)
        if hashlib.sha256(pdf).hexdigest() != row.sha256:
            raise RuntimeError(f"document {row.document_id} version {row.version} cannot be rebuilt from the blobs "
                               "(a blob on the filesystem backend must be copied into the blobs table first)")
        known[row.sha256] = pdf
        conn.execute(_files.update().where(_files.c.id == row.id).values(pdf=pdf))
    with op.batch_alter_table('document_files', schema=None) as batch_op:
        batch_op.alter_column('pdf', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_index(batch_op.f('ix_document_files_base_sha256'))
        batch_op.drop_index(batch_op.f('ix_document_files_blob_sha256'))
        batch_op.drop_column('base_sha256')
        batch_op.drop_column('blob_sha256')
        batch_op.drop_column('storage')
    op.drop_index(op.f('ix_blobs_created_at'), table_name='blobs')
    op.drop_table('blobs')
