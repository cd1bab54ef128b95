"""incidents.acknowledged_at/_by and fleet_key, incident_clusters (fleet incidents), incident_links (related, merged)

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.core.store.models

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, bot.core.store.models.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(_ts("acknowledged_at"))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("fleet_key", sa.String(), nullable=True))
        batch_op.create_index("ix_incidents_fleet_key", ["fleet_key"])
    op.create_table(
        "incident_clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        _ts("started_at", nullable=False),
        _ts("detected_at", nullable=False),
        _ts("notified_at"),
        _ts("diagnosed_at"),
        _ts("mitigated_at"),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "cluster", name="uq_incident_cluster"),
    )
    op.create_index("ix_incident_clusters_incident_id", "incident_clusters", ["incident_id"])
    op.create_index("ix_incident_clusters_cluster", "incident_clusters", ["cluster"])
    op.create_table(
        "incident_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        _ts("created_at", nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["other_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "other_id", "kind", name="uq_incident_link"),
    )
    op.create_index("ix_incident_links_incident_id", "incident_links", ["incident_id"])
    op.create_index("ix_incident_links_other_id", "incident_links", ["other_id"])


def downgrade() -> None:
    op.drop_table("incident_links")
    op.drop_table("incident_clusters")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_fleet_key")
        batch_op.drop_column("fleet_key")
        batch_op.drop_column("acknowledged_by")
        batch_op.drop_column("acknowledged_at")
