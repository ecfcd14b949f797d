"""transparency log: pending entries, sequenced entries, hash tiles, checkpoints (issue 20)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 04:25:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'transparency_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('origin', sa.String(length=200), nullable=False),
        sa.Column('key_ref', sa.String(length=300), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('root_hash', sa.LargeBinary(), nullable=False),
        sa.Column('checkpoint', sa.Text(), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('anchored_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'log_pending',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('entry', sa.LargeBinary(), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('commune_code', sa.String(length=5), nullable=True),
        sa.Column('document_id', sa.String(length=16), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_log_pending_document_id'), 'log_pending', ['document_id'], unique=False)
    op.create_table(
        'log_entries',
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('entry', sa.LargeBinary(), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('commune_code', sa.String(length=5), nullable=True),
        sa.Column('document_id', sa.String(length=16), nullable=True),
        sa.Column('sequenced_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('idx'),
    )
    op.create_index(op.f('ix_log_entries_commune_code'), 'log_entries', ['commune_code'], unique=False)
    op.create_index(op.f('ix_log_entries_document_id'), 'log_entries', ['document_id'], unique=False)
    op.create_table(
        'log_tiles',
        sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('level', 'idx'),
    )
    op.create_table(
        'log_checkpoints',
        sa.Column('size', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('size'),
    )


def downgrade() -> None:
    op.drop_table('log_checkpoints')
    op.drop_table('log_tiles')
    op.drop_index(op.f('ix_log_entries_document_id'), table_name='log_entries')
    op.drop_index(op.f('ix_log_entries_commune_code'), table_name='log_entries')
    op.drop_table('log_entries')
    op.drop_index(op.f('ix_log_pending_document_id'), table_name='log_pending')
    op.drop_table('log_pending')
    op.drop_table('transparency_log')
