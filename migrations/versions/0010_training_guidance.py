"""trainings (Pasal 8) and guidance requests and sessions (Pasal 9)

Revision ID: 0010
Revises: 0009 (to be re-chained to 0009 when merged)
Create Date: 2026-12-03 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def _index(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f'ix_{table}_{column}'), [column], unique=False)


def upgrade() -> None:
    op.create_table('training',
    sa.Column('id', _ID, nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('trainer', sa.String(length=200), nullable=False),
    sa.Column('place', sa.String(length=300), nullable=True),
    sa.Column('online_url', sa.String(length=500), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('status', _enum('trainingstatus', 'dijadwalkan', 'selesai', 'dibatalkan'),
              nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training'))
    )
    _index('training', 'starts_at')
    op.create_table('training_registration',
    sa.Column('id', _ID, nullable=False),
    sa.Column('training_id', _ID, nullable=False),
    sa.Column('business_id', _ID, nullable=False),
    sa.Column('source', _enum('registrationsource', 'portal', 'whatsapp'), nullable=False),
    sa.Column('registered_by', sa.String(length=120), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attendance', _enum('attendance', 'hadir', 'tidak_hadir'), nullable=True),
    sa.Column('attendance_by', sa.String(length=120), nullable=True),
    sa.Column('attendance_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'],
                            name=op.f('fk_training_registration_business_id_business')),
    sa.ForeignKeyConstraint(['training_id'], ['training.id'],
                            name=op.f('fk_training_registration_training_id_training')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_registration')),
    sa.UniqueConstraint('training_id', 'business_id',
                        name=op.f('uq_training_registration_training_id_business_id'))
    )
    _index('training_registration', 'training_id', 'business_id')
    op.create_table('guidance_request',
    sa.Column('id', _ID, nullable=False),
    sa.Column('business_id', _ID, nullable=False),
    sa.Column('topic', _enum('guidancetopic', 'legalitas', 'standardisasi_sertifikasi',
                             'permodalan', 'manajemen', 'pemasaran'), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', _enum('guidancestatus', 'diajukan', 'ditugaskan', 'berjalan',
                              'selesai'), nullable=False),
    sa.Column('requested_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('pendamping_id', _ID, nullable=True),
    sa.Column('assigned_by', sa.String(length=120), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'],
                            name=op.f('fk_guidance_request_business_id_business')),
    sa.ForeignKeyConstraint(['pendamping_id'], ['user.id'],
                            name=op.f('fk_guidance_request_pendamping_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guidance_request'))
    )
    _index('guidance_request', 'business_id', 'pendamping_id')
    op.create_table('guidance_session',
    sa.Column('id', _ID, nullable=False),
    sa.Column('request_id', _ID, nullable=False),
    sa.Column('pendamping_id', _ID, nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('private_notes', sa.Text(), nullable=True),
    sa.Column('follow_up', sa.Text(), nullable=True),
    sa.Column('follow_up_due', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pendamping_id'], ['user.id'],
                            name=op.f('fk_guidance_session_pendamping_id_user')),
    sa.ForeignKeyConstraint(['request_id'], ['guidance_request.id'],
                            name=op.f('fk_guidance_session_request_id_guidance_request')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guidance_session'))
    )
    _index('guidance_session', 'request_id')


def downgrade() -> None:
    for table, columns in (('guidance_session', ('request_id',)),
                           ('guidance_request', ('business_id', 'pendamping_id')),
                           ('training_registration', ('training_id', 'business_id')),
                           ('training', ('starts_at',))):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_index(batch_op.f(f'ix_{table}_{column}'))
        op.drop_table(table)
