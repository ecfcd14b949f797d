"""token_certificates: TLS client certificates (profile api-client) bound to client tokens, for mTLS

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'token_certificates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('certificate_id', sa.Integer(), nullable=False),
        sa.Column('serial', sa.String(length=64), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], ),
        sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('certificate_id'),
        sa.UniqueConstraint('sha256'),
    )
    with op.batch_alter_table('token_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_certificates_token_id'), ['token_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('token_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_certificates_token_id'))
    op.drop_table('token_certificates')
