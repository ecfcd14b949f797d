"""revocation_invalidity_date: certificates.invalidity_date (RFC 5280 5.3.2), for CRL entries and OCSP

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 01:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('certificates') as batch:
        batch.add_column(sa.Column('invalidity_date', core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('certificates') as batch:
        batch.drop_column('invalidity_date')
