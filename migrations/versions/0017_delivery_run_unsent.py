"""delivery plan at a million (issue 22): the run index holds the unsent rows only

``ix_delivery_run_status`` (run, status, id) had an entry for every row in every status,
and got a new one at every status change (a claim or an outcome is never a HOT update:
``status`` is indexed): at 1M rows it was 190 MB of the 1.1 GB that no longer fit in
shared_buffers.  Its queries look for the open rows of a run (pending, sending: the
batches, the sweeper, ``finish_if_done``) or for its failed and skipped rows (the error
budget after every batch, the status page), never for its sent rows through it: the
status page counts those from the run's rows of the unique key, the last minute's
through ``ix_delivery_sent_at``.  Now it holds every row but the sent ones
(``status <> 'sent'``): the outcome of a sent message (the last and the most common
change) writes no entry into it, and a finished run leaves only its failures in it.
SQLite keeps the whole index: its planner uses a partial index only for a query that
repeats the index's condition, and ``status = 'pending'`` does not.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 19:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = sa.text("status <> 'sent'")


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_run_unsent', ['run_id', 'status', 'id'],
                              unique=False, postgresql_where=UNSENT)
        batch_op.drop_index('ix_delivery_run_status')


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_run_status', ['run_id', 'status', 'id'],
                              unique=False)
        batch_op.drop_index('ix_delivery_run_unsent')
