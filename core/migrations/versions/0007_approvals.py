"""approvals: destructive operations (destroying a key) wait for a second operator

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 08:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'approvals',
        sa.Column('id', sa.String(length=24), nullable=False),
        sa.Column('operation', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=100), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('requested_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=200), nullable=True),
        sa.Column('decided_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('approvals')
