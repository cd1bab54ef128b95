"""guard_breakers and guard_exceptions: the admission guard's tripped breakers and approved exceptions

Revision ID: 0012
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.core.store.models import UTCDateTime

revision = "0012"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guard_breakers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("client", sa.String(), nullable=False),
        sa.Column("resource", sa.String(), nullable=False),
        sa.Column("first_delete_at", UTCDateTime(), nullable=False),
        sa.Column("tripped_at", UTCDateTime(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("lifted_at", UTCDateTime(), nullable=True),
        sa.Column("lifted_by", sa.String(), nullable=True),
    )
    op.create_index("ix_guard_breakers_open", "guard_breakers", ["cluster", "lifted_at"])
    op.create_index("ix_guard_breakers_incident_id", "guard_breakers", ["incident_id"])
    op.create_table(
        "guard_exceptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("needed", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("until", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_guard_exceptions_cluster", "guard_exceptions", ["cluster"])
    op.create_index("ix_guard_exceptions_incident_id", "guard_exceptions", ["incident_id"])


def downgrade() -> None:
    op.drop_table("guard_exceptions")
    op.drop_table("guard_breakers")
