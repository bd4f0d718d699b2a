"""A/B winner of a run with a winner rule, issue 19 (ab_winner table only)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('ab_winner',
    sa.Column('id', _ID, nullable=False),
    sa.Column('run_id', _ID, nullable=False),
    sa.Column('variant', sa.String(length=40), nullable=False),
    sa.Column('metric', sa.String(length=32), nullable=False),
    sa.Column('significant', sa.Boolean(), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('rest_planned', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['campaign_run.id'], ondelete='CASCADE',
                            name=op.f('fk_ab_winner_run_id_campaign_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ab_winner')),
    sa.UniqueConstraint('run_id', name=op.f('uq_ab_winner_run_id'))
    )


def downgrade() -> None:
    op.drop_table('ab_winner')
