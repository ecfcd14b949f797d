"""enrolment_codes_sessions_throttle: one-time enrolment codes, sign-in names, /me sessions, throttle

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 01:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'enrolment_codes',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('credential_id', sa.String(length=40), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('redeemed_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('used_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('void_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('pin_salt', sa.LargeBinary(), nullable=True),
        sa.Column('pin_hash', sa.LargeBinary(), nullable=True),
        sa.Column('totp_secret', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('enrolment_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_codes_credential_id'), ['credential_id'], unique=False)
    op.create_table(
        'specialist_logins',
        sa.Column('username', sa.String(length=32), nullable=False),
        sa.Column('credential_id', sa.String(length=40), nullable=False),
        sa.Column('set_by', sa.String(length=200), nullable=False),
        sa.Column('set_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], ),
        sa.PrimaryKeyConstraint('username'),
        sa.UniqueConstraint('credential_id'),
    )
    op.create_table(
        'specialist_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('credential_id', sa.String(length=40), nullable=False),
        sa.Column('person', sa.String(length=80), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('revoked_why', sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('specialist_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_specialist_sessions_credential_id'), ['credential_id'], unique=False)
    op.create_table(
        'activation_throttle',
        sa.Column('key', sa.String(length=160), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('known', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('activation_throttle')
    with op.batch_alter_table('specialist_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_specialist_sessions_credential_id'))
    op.drop_table('specialist_sessions')
    op.drop_table('specialist_logins')
    with op.batch_alter_table('enrolment_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrolment_codes_credential_id'))
    op.drop_table('enrolment_codes')
