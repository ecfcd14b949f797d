"""issuance_idempotency: the certificate an Idempotency-Key on POST /api/v1/certificates produced

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 15:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'issuance_idempotency',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client', sa.String(length=200), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('request_sha256', sa.String(length=64), nullable=False),
        sa.Column('serial', sa.String(length=64), nullable=False),
        sa.Column('credential_id', sa.String(length=40), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('client', 'key'),
    )


def downgrade() -> None:
    op.drop_table('issuance_idempotency')
