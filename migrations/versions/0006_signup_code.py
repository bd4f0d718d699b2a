"""one-time codes of owner sign-up (signup_code table only)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('signup_code',
    sa.Column('id', _ID, nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('contact', sa.String(length=254), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('user_id', _ID, nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'],
                            name=op.f('fk_signup_code_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signup_code'))
    )
    with op.batch_alter_table('signup_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signup_code_contact'), ['contact'], unique=False)
        batch_op.create_index(batch_op.f('ix_signup_code_session_hash'), ['session_hash'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_signup_code_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signup_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signup_code_user_id'))
        batch_op.drop_index(batch_op.f('ix_signup_code_session_hash'))
        batch_op.drop_index(batch_op.f('ix_signup_code_contact'))
    op.drop_table('signup_code')
