"""documents.offline_seal: the signed facts a document's verification QR code carries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offline_seal', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_column('offline_seal')
