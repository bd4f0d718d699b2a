"""monthly report mailing record, issue 19 (report_dispatch table only)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('report_dispatch',
    sa.Column('id', _ID, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_dispatch')),
    sa.UniqueConstraint('period', name=op.f('uq_report_dispatch_period'))
    )


def downgrade() -> None:
    op.drop_table('report_dispatch')
