"""marketplace links of products, Pasal 7 ayat (4) (product_links table only)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('product_links',
    sa.Column('id', _ID, nullable=False),
    sa.Column('product_id', _ID, nullable=False),
    sa.Column('marketplace', sa.String(length=32), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], ondelete='CASCADE',
                            name=op.f('fk_product_links_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_links'))
    )
    with op.batch_alter_table('product_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_links_product_id'), ['product_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('product_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_links_product_id'))
    op.drop_table('product_links')
