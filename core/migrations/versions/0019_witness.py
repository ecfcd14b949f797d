"""witness_keys, witnessed_logs, log_witness_state: kyso as a C2SP tlog witness, and its log's witnesses

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 04:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'witness_keys',
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('key_ref', sa.String(length=512), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'witnessed_logs',
        sa.Column('origin', sa.String(length=255), nullable=False),
        sa.Column('vkey', sa.Text(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('root_hash', sa.LargeBinary(), nullable=False),
        sa.Column('checkpoint', sa.Text(), nullable=True),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('origin'),
    )
    op.create_table(
        'log_witness_state',
        sa.Column('witness', sa.String(length=255), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('cosignature', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('witness'),
    )


def downgrade() -> None:
    op.drop_table('log_witness_state')
    op.drop_table('witnessed_logs')
    op.drop_table('witness_keys')
