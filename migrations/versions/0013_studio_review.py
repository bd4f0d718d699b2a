"""studio: four-eyes review and sync hash on revisions, run revision, staff contacts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 12:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('campaign_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review', sa.String(length=16), nullable=False,
                                      server_default='draft'))
        batch_op.add_column(sa.Column('review_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reviewer', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('base_hash', sa.String(length=64), nullable=True))
    with op.batch_alter_table('campaign_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision_id', _ID, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_campaign_run_revision_id_campaign_revisions'),
                                    'campaign_revisions', ['revision_id'], ['id'])
    op.create_table('staff_contacts',
    sa.Column('id', _ID, nullable=False),
    sa.Column('user_id', _ID, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('whatsapp', sa.String(length=32), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE',
                            name=op.f('fk_staff_contacts_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_contacts')),
    sa.UniqueConstraint('user_id', name=op.f('uq_staff_contacts_user_id'))
    )


def downgrade() -> None:
    op.drop_table('staff_contacts')
    with op.batch_alter_table('campaign_run', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_campaign_run_revision_id_campaign_revisions'),
                                 type_='foreignkey')
        batch_op.drop_column('revision_id')
    with op.batch_alter_table('campaign_revisions', schema=None) as batch_op:
        batch_op.drop_column('base_hash')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewer')
        batch_op.drop_column('review_note')
        batch_op.drop_column('review')
