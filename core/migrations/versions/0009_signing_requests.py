"""signing_requests: documents submitted for a specialist to approve on their page (/me)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'signing_requests',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('credential_id', sa.String(length=40), nullable=False),
        sa.Column('client', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('signing_requests', schema=None) as batch_op:
        batch_op.create_index('ix_signing_requests_credential_status', ['credential_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_signing_requests_client'), ['client'], unique=False)
    op.create_table(
        'signing_request_items',
        sa.Column('request_id', sa.String(length=32), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=True),
        sa.Column('metadata_json', sa.Text(), nullable=False),
        sa.Column('pdf', sa.LargeBinary(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('document_id', sa.String(length=16), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['request_id'], ['signing_requests.id'], ),
        sa.PrimaryKeyConstraint('request_id', 'position'),
    )


def downgrade() -> None:
    op.drop_table('signing_request_items')
    with op.batch_alter_table('signing_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signing_requests_client'))
        batch_op.drop_index('ix_signing_requests_credential_status')
    op.drop_table('signing_requests')
