"""DMARC aggregate reports and the warm-up's per-day counter (issue 21)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('dmarc_report',
    sa.Column('id', _ID, nullable=False),
    sa.Column('org_name', sa.String(length=255), nullable=False),
    sa.Column('report_id', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('date_begin', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('policy_domain', sa.String(length=255), nullable=False),
    sa.Column('policy_p', sa.String(length=16), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dmarc_report')),
    sa.UniqueConstraint('org_name', 'report_id', name=op.f('uq_dmarc_report_org_name'))
    )
    with op.batch_alter_table('dmarc_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dmarc_report_date_begin'), ['date_begin'],
                              unique=False)
    op.create_table('dmarc_record',
    sa.Column('id', _ID, nullable=False),
    sa.Column('report_id', _ID, nullable=False),
    sa.Column('source_ip', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('disposition', sa.String(length=16), nullable=False),
    sa.Column('dkim_aligned', sa.Boolean(), nullable=False),
    sa.Column('spf_aligned', sa.Boolean(), nullable=False),
    sa.Column('header_from', sa.String(length=255), nullable=False),
    sa.Column('auth_results', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['dmarc_report.id'], ondelete='CASCADE',
                            name=op.f('fk_dmarc_record_report_id_dmarc_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dmarc_record'))
    )
    with op.batch_alter_table('dmarc_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dmarc_record_report_id'), ['report_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_dmarc_record_source_ip'), ['source_ip'],
                              unique=False)
    op.create_table('warmup_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('quota', sa.Integer(), nullable=False),
    sa.Column('claimed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_warmup_day'))
    )


def downgrade() -> None:
    op.drop_table('warmup_day')
    with op.batch_alter_table('dmarc_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dmarc_record_source_ip'))
        batch_op.drop_index(batch_op.f('ix_dmarc_record_report_id'))
    op.drop_table('dmarc_record')
    with op.batch_alter_table('dmarc_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dmarc_report_date_begin'))
    op.drop_table('dmarc_report')
