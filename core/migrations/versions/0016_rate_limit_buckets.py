"""rate_limit_buckets: token buckets of the open routes' rate limits, shared by every worker and node

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 02:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_limit_buckets',
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('tokens', sa.Float(), nullable=False),
        sa.Column('updated', sa.Float(), nullable=False),
        sa.Column('granted', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index(op.f('ix_rate_limit_buckets_updated'), 'rate_limit_buckets', ['updated'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_rate_limit_buckets_updated'), table_name='rate_limit_buckets')
    op.drop_table('rate_limit_buckets')
