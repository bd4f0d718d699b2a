"""campaign revisions saved from the studio (campaign_revisions table only)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('campaign_revisions',
    sa.Column('id', _ID, nullable=False),
    sa.Column('campaign_key', sa.String(length=120), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('yaml_text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_revisions')),
    sa.UniqueConstraint('campaign_key', 'number',
                        name=op.f('uq_campaign_revisions_campaign_key_number'))
    )


def downgrade() -> None:
    op.drop_table('campaign_revisions')
