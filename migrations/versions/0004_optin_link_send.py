"""rate-limit memory of confirmed opt-in links (table only)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('optin_link_send',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
              nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_by', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'],
                            name=op.f('fk_optin_link_send_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_optin_link_send'))
    )
    with op.batch_alter_table('optin_link_send', schema=None) as batch_op:
        batch_op.create_index('ix_optin_link_send_customer_channel_sent',
                              ['customer_id', 'channel', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('optin_link_send', schema=None) as batch_op:
        batch_op.drop_index('ix_optin_link_send_customer_channel_sent')
    op.drop_table('optin_link_send')
