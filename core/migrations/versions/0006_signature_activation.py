"""activation_data: each credential's PIN hash, sealed TOTP secret and lockout state;
signature_activations: Signature Activation Data (SAD) bound to hashes, single use, short-lived

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-20 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'activation_data',
        sa.Column('credential_id', sa.String(length=40), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('pin_kdf', sa.String(length=40), nullable=False),
        sa.Column('pin_salt', sa.LargeBinary(), nullable=False),
        sa.Column('pin_hash', sa.LargeBinary(), nullable=False),
        sa.Column('totp_secret', sa.LargeBinary(), nullable=False),
        sa.Column('last_otp_step', sa.BigInteger(), nullable=True),
        sa.Column('failed_attempts', sa.Integer(), nullable=False),
        sa.Column('locked_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('enrolled_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('enrolled_by', sa.String(length=200), nullable=False),
        sa.Column('confirmed_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('pin_changed_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['credential_id'], ['credentials.id']),
        sa.PrimaryKeyConstraint('credential_id'),
    )
    op.create_table(
        'signature_activations',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('credential_id', sa.String(length=40), nullable=False),
        sa.Column('principal', sa.String(length=200), nullable=False),
        sa.Column('hash_algo', sa.String(length=16), nullable=False),
        sa.Column('num_signatures', sa.Integer(), nullable=False),
        sa.Column('hashes', sa.Text(), nullable=False),
        sa.Column('authorized_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('used_for', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['credential_id'], ['credentials.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('signature_activations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signature_activations_credential_id'), ['credential_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_signature_activations_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signature_activations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signature_activations_expires_at'))
        batch_op.drop_index(batch_op.f('ix_signature_activations_credential_id'))
    op.drop_table('signature_activations')
    op.drop_table('activation_data')
