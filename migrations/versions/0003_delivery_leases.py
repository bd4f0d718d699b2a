"""delivery claim leases: lease_owner and lease_until (issue 14)

Rows already in ``sending`` keep ``claimed_at`` and no lease: the sweeper still
treats them by ``STALE_AFTER_SECONDS``, so nothing claimed before the upgrade is lost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 15:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
