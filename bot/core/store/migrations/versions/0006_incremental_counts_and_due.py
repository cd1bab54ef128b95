"""incidents.alerts_firing / last_alert_at / slo_due_at and incident_alert_counts

Ingestion keeps per-incident alert counts as it stores alerts (no aggregate
over an incident's alerts per delivery), and the watcher selects only
incidents whose stored next-due instant has come.

Existing data is backfilled: counts and last activity from the alerts table;
every active incident is due at once (its ``started_at``), so the first
watcher tick evaluates it and stores its real next instant.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.core.store.models

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTIVE = ("detected", "notified", "diagnosing", "diagnosed", "mitigating", "mitigated")


def upgrade() -> None:
    op.create_table(
        "incident_alert_counts",
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("alertname", sa.String(), nullable=False),
        sa.Column("firing", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("resolved", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("incident_id", "alertname"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alerts_firing", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_alert_at", bot.core.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("slo_due_at", bot.core.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_incidents_slo_due_at", ["slo_due_at"], unique=False)
    op.execute(
        "INSERT INTO incident_alert_counts (incident_id, alertname, firing, resolved) "
        "SELECT incident_id, alertname, "
        "SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END), SUM(CASE WHEN status = 'resolved' THEN 1 ELSE 0 END) "
        "FROM alerts WHERE incident_id IS NOT NULL GROUP BY incident_id, alertname"
    )
    op.execute(
        "UPDATE incidents SET "
        "alerts_firing = (SELECT COUNT(*) FROM alerts WHERE alerts.incident_id = incidents.id "
        "AND alerts.status = 'firing'), "
        "last_alert_at = (SELECT MAX(received_at) FROM alerts WHERE alerts.incident_id = incidents.id)"
    )
    active = ", ".join(f"'{state}'" for state in ACTIVE)
    op.execute(f"UPDATE incidents SET slo_due_at = started_at WHERE state IN ({active})")


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_slo_due_at")
        batch_op.drop_column("slo_due_at")
        batch_op.drop_column("last_alert_at")
        batch_op.drop_column("alerts_firing")
    op.drop_table("incident_alert_counts")
