"""action_items: priority, due date, reminders and the tracker issue they are mirrored to

Revision ID: 0008
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("priority", lambda: sa.Column("priority", sa.String(), nullable=False, server_default="p2")),
    ("due_on", lambda: sa.Column("due_on", sa.Date(), nullable=True)),
    ("reminded_on", lambda: sa.Column("reminded_on", sa.Date(), nullable=True)),
    ("tracker", lambda: sa.Column("tracker", sa.String(), nullable=True)),
    ("tracker_key", lambda: sa.Column("tracker_key", sa.String(), nullable=True)),
    ("tracker_url", lambda: sa.Column("tracker_url", sa.Text(), nullable=True)),
    ("tracker_error", lambda: sa.Column("tracker_error", sa.Text(), nullable=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        for _, column in _COLUMNS:
            batch_op.add_column(column())
    op.create_index("ix_action_items_open_due", "action_items", ["done", "due_on"])


def downgrade() -> None:
    op.drop_index("ix_action_items_open_due", table_name="action_items")
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
