"""annual programme plan, agreements and complaints, Pasal 11-14 (new tables only)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('agreement',
    sa.Column('id', _ID, nullable=False),
    sa.Column('provider_name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('parties', sa.Text(), nullable=False),
    sa.Column('rights_obligations', sa.Text(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('document_key', sa.String(length=80), nullable=True),
    sa.Column('document_name', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreement'))
    )
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_end_date'), ['end_date'], unique=False)

    op.create_table('programme_plan',
    sa.Column('id', _ID, nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_plan')),
    sa.UniqueConstraint('year', name=op.f('uq_programme_plan_year'))
    )
    op.create_table('complaint',
    sa.Column('id', _ID, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('business_id', _ID, nullable=True),
    sa.Column('agreement_id', _ID, nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreement.id'], name=op.f('fk_complaint_agreement_id_agreement')),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_complaint_business_id_business')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint'))
    )
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_business_id'), ['business_id'], unique=False)

    op.create_table('plan_budget',
    sa.Column('id', _ID, nullable=False),
    sa.Column('plan_id', _ID, nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('used', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['programme_plan.id'], name=op.f('fk_plan_budget_plan_id_programme_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_budget'))
    )
    with op.batch_alter_table('plan_budget', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_budget_plan_id'), ['plan_id'], unique=False)

    op.create_table('plan_partner',
    sa.Column('id', _ID, nullable=False),
    sa.Column('plan_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['programme_plan.id'], name=op.f('fk_plan_partner_plan_id_programme_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_partner'))
    )
    with op.batch_alter_table('plan_partner', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_partner_plan_id'), ['plan_id'], unique=False)

    op.create_table('plan_target',
    sa.Column('id', _ID, nullable=False),
    sa.Column('plan_id', _ID, nullable=False),
    sa.Column('indicator', sa.String(length=32), nullable=False),
    sa.Column('quarter', sa.Integer(), nullable=False),
    sa.Column('target', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['programme_plan.id'], name=op.f('fk_plan_target_plan_id_programme_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_target')),
    sa.UniqueConstraint('plan_id', 'indicator', 'quarter', name=op.f('uq_plan_target_plan_id_indicator_quarter'))
    )
    with op.batch_alter_table('plan_target', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_target_plan_id'), ['plan_id'], unique=False)

    op.create_table('complaint_follow_up',
    sa.Column('id', _ID, nullable=False),
    sa.Column('complaint_id', _ID, nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], name=op.f('fk_complaint_follow_up_complaint_id_complaint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_follow_up'))
    )
    with op.batch_alter_table('complaint_follow_up', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_follow_up_complaint_id'), ['complaint_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('complaint_follow_up', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_follow_up_complaint_id'))

    op.drop_table('complaint_follow_up')
    with op.batch_alter_table('plan_target', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_target_plan_id'))

    op.drop_table('plan_target')
    with op.batch_alter_table('plan_partner', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_partner_plan_id'))

    op.drop_table('plan_partner')
    with op.batch_alter_table('plan_budget', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_budget_plan_id'))

    op.drop_table('plan_budget')
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_business_id'))
        batch_op.drop_index(batch_op.f('ix_complaint_agreement_id'))

    op.drop_table('complaint')
    op.drop_table('programme_plan')
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreement_end_date'))

    op.drop_table('agreement')
