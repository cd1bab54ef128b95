"""probe counters and hourly tallies: the customer probes' SLOs and error budgets

Revision ID: 0013
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.core.store.models

revision = "0013"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("probe_results", schema=None) as batch_op:
        for name in ("runs_total", "failures_total", "slow_total"):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "probe_tallies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("hour", bot.core.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("slow", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False, server_default="0"),
        sa.UniqueConstraint("cluster", "target", "hour", name="uq_probe_tally"),
    )
    op.create_index("ix_probe_tallies_cluster", "probe_tallies", ["cluster"])
    op.create_index("ix_probe_tallies_hour", "probe_tallies", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_probe_tallies_hour", table_name="probe_tallies")
    op.drop_index("ix_probe_tallies_cluster", table_name="probe_tallies")
    op.drop_table("probe_tallies")
    with op.batch_alter_table("probe_results", schema=None) as batch_op:
        for name in ("runs_total", "failures_total", "slow_total"):
            batch_op.drop_column(name)
