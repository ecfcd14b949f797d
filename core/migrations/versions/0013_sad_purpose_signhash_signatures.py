"""sad_purpose_signhash_signatures: what each SAD was authorized for, and every CSC signHash signature

signature_activations.purpose: "documents" (REST /sign, batches, signing requests, CSC signDoc) or
"hash" (CSC signatures/signHash); a SAD is spent only at its own door. SADs issued before this
revision live five minutes at most and were all authorized through credentials/authorize for the
documented /sign flow: they are backfilled as "documents".

signhash_signatures: one row per raw signature signHash made (credential, hash and its algorithm,
client, SAD, time, SHA-256 of the signature value).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('signature_activations') as batch:
        batch.add_column(sa.Column('purpose', sa.String(length=16), nullable=True))
    op.execute("UPDATE signature_activations SET purpose = 'documents'")
    with op.batch_alter_table('signature_activations') as batch:
        batch.alter_column('purpose', existing_type=sa.String(length=16), nullable=False)
    op.create_table(
        'signhash_signatures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('credential_id', sa.String(length=40), nullable=False),
        sa.Column('signer_serial', sa.String(length=64), nullable=False),
        sa.Column('hash_algo', sa.String(length=16), nullable=False),
        sa.Column('hash', sa.String(length=128), nullable=False),
        sa.Column('signature_sha256', sa.String(length=64), nullable=False),
        sa.Column('client', sa.String(length=200), nullable=False),
        sa.Column('sad_id', sa.String(length=64), nullable=False),
        sa.Column('signed_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['credential_id'], ['credentials.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_signhash_signatures_credential_id', 'signhash_signatures', ['credential_id'])
    op.create_index('ix_signhash_signatures_signature_sha256', 'signhash_signatures', ['signature_sha256'])


def downgrade() -> None:
    op.drop_index('ix_signhash_signatures_signature_sha256', table_name='signhash_signatures')
    op.drop_index('ix_signhash_signatures_credential_id', table_name='signhash_signatures')
    op.drop_table('signhash_signatures')
    with op.batch_alter_table('signature_activations') as batch:
        batch.drop_column('purpose')
