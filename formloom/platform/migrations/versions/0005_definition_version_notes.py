"""definition version notes: the impact decisions and a note recorded with each publish

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('definition_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('impact', JSON, nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('definition_versions', schema=None) as batch_op:
        batch_op.drop_column('note')
        batch_op.drop_column('impact')
