"""policy_versions: every signing-policy version ever in force; document_files: the policy version,
rule and reception (own commune / province-wide) that allowed each signature

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'policy_versions',
        sa.Column('version', sa.String(length=40), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('first_loaded_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('version'),
    )
    with op.batch_alter_table('document_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy_version', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('policy_rule', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('reception', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('document_files', schema=None) as batch_op:
        batch_op.drop_column('reception')
        batch_op.drop_column('policy_rule')
        batch_op.drop_column('policy_version')
    op.drop_table('policy_versions')
