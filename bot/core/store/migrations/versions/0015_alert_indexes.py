"""alerts: drop the two indexes no query uses (fingerprint alone, alertname)

``uq_alert_instance`` (fingerprint, starts_at) already serves every lookup by
fingerprint, and since 0006 the counts by alert name live in
``incident_alert_counts``: nothing reads alerts by name. Each index cost every
stored alert one more index insertion, in a storm thousands a second.

Revision ID: 0015
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_index("ix_alerts_fingerprint")
        batch_op.drop_index("ix_alerts_alertname")


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.create_index("ix_alerts_alertname", ["alertname"], unique=False)
        batch_op.create_index("ix_alerts_fingerprint", ["fingerprint"], unique=False)
