"""evidence_sections (frozen at T0) and cluster_changes (what changed before T0)

Revision ID: 0011
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.core.store.models

revision = "0011"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, bot.core.store.models.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "evidence_sections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("section", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        _ts("captured_at", nullable=False),
        _ts("window_start"),
        _ts("window_end"),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.UniqueConstraint("incident_id", "section", name="uq_evidence_section"),
    )
    op.create_index("ix_evidence_sections_incident_id", "evidence_sections", ["incident_id"])
    op.create_table(
        "cluster_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        _ts("at", nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("namespace", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("change", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.UniqueConstraint("cluster", "key", name="uq_cluster_change"),
    )
    op.create_index("ix_cluster_changes_at", "cluster_changes", ["cluster", "at"])


def downgrade() -> None:
    op.drop_index("ix_cluster_changes_at", table_name="cluster_changes")
    op.drop_table("cluster_changes")
    op.drop_index("ix_evidence_sections_incident_id", table_name="evidence_sections")
    op.drop_table("evidence_sections")
