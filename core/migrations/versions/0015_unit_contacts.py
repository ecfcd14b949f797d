"""unit_contacts: admin_unit_contacts (address and phone of a unit's People's Committee, for the citizen page)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 02:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_unit_contacts',
        sa.Column('code', sa.String(length=5), nullable=False),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('phone', sa.String(length=40), nullable=True),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('updated_on', sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint('code'),
    )


def downgrade() -> None:
    op.drop_table('admin_unit_contacts')
