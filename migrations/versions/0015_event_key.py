"""idempotency key of buffered tracking events (engagement_event.event_key, unique)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('engagement_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_key', sa.String(length=40), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_engagement_event_event_key'),
                                          ['event_key'])


def downgrade() -> None:
    with op.batch_alter_table('engagement_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_engagement_event_event_key'), type_='unique')
        batch_op.drop_column('event_key')
