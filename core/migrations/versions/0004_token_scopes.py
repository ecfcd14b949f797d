"""api_tokens: client scopes (communes, operations, document types), expiry, rotation with a grace period

Existing rows get NULL scopes, which mean "every value": tokens made before this revision keep the
full scope of their role, never expire and have no previous secret.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope_units', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('scope_operations', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('scope_document_types', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rotated_at', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('previous_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_valid_until', core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_api_tokens_previous_hash'), ['previous_hash'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_previous_hash'))
        batch_op.drop_column('previous_valid_until')
        batch_op.drop_column('previous_hash')
        batch_op.drop_column('rotated_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scope_document_types')
        batch_op.drop_column('scope_operations')
        batch_op.drop_column('scope_units')
