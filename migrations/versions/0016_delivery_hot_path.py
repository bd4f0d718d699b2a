"""delivery hot path (issue 22): run status NOTIFY, partial indexes, attribution FK

- The send gate (engine.delivery.gate) read the run's status before every message, 250
  round trips a batch.  On PostgreSQL a trigger now notifies ``umkm_run_<id>`` when a
  run's status changes, and the gate listens instead (SQLite has no LISTEN: the gate
  keeps reading the status per message there).
- A delivery row is updated at its claim and at its outcome; neither update can be HOT
  (``status`` is indexed), so each writes an entry into every index of the table.
  ``ix_delivery_sent_at`` now holds only sent rows (every query of it bounds
  ``sent_at``) and ``ix_delivery_status_next`` only open rows (``pending``/``sending``:
  what the beat and the sweeper look for), so a claim skips the first and an outcome
  the second, and both stay small on a table of millions of settled rows.
- ``delivery_product.business_id`` loses its foreign key: it is copied from the
  product (whose own key guarantees the business), and the check cost ~9 µs of
  PostgreSQL per attribution row (three rows a message) on top of the product's.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 14:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION umkm_run_status_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('umkm_run_' || NEW.id::text, NEW.status::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER campaign_run_status_notify
AFTER UPDATE OF status ON campaign_run
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION umkm_run_status_notify()
"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


OPEN = sa.text("status IN ('pending', 'sending')")
SENT = sa.text('sent_at IS NOT NULL')
BUSINESS_FK = 'fk_delivery_product_business_id_business'


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_status_next')
        batch_op.drop_index('ix_delivery_sent_at')
        batch_op.create_index('ix_delivery_status_next', ['status', 'next_attempt_at'],
                              unique=False, postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.create_index('ix_delivery_sent_at', ['sent_at'], unique=False,
                              postgresql_where=SENT, sqlite_where=SENT)
    with op.batch_alter_table('delivery_product', schema=None) as batch_op:
        batch_op.drop_constraint(BUSINESS_FK, type_='foreignkey')
    if _postgres():
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if _postgres():
        op.execute('DROP TRIGGER IF EXISTS campaign_run_status_notify ON campaign_run')
        op.execute('DROP FUNCTION IF EXISTS umkm_run_status_notify()')
    with op.batch_alter_table('delivery_product', schema=None) as batch_op:
        batch_op.create_foreign_key(BUSINESS_FK, 'business', ['business_id'], ['id'])
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_sent_at')
        batch_op.drop_index('ix_delivery_status_next')
        batch_op.create_index('ix_delivery_sent_at', ['sent_at'], unique=False)
        batch_op.create_index('ix_delivery_status_next', ['status', 'next_attempt_at'],
                              unique=False)
