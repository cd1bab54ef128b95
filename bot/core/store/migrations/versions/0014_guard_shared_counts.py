"""guard_delete_counts and one open breaker per key: the mass-deletion breaker counts across replicas

Each replica publishes its deletes per (cluster, resource, client) and time bucket; every replica adds
the others' to its own. A partial unique index lets exactly one replica's trip of a key be stored
(and open the incident). Open duplicates left by replicas that counted on their own are closed first,
keeping the earliest.

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.core.store.models import UTCDateTime

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

OPEN = sa.text("lifted_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "guard_delete_counts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("replica", sa.String(), nullable=False),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("resource", sa.String(), nullable=False),
        sa.Column("client", sa.String(), nullable=False),
        sa.Column("bucket_start", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("replica", "cluster", "resource", "client", "bucket_start", name="uq_guard_delete_count"),
    )
    op.create_index("ix_guard_delete_counts_last_at", "guard_delete_counts", ["last_at"])
    op.execute("UPDATE guard_breakers SET lifted_at = tripped_at, lifted_by = 'duplicate (migration 0014)' "
               "WHERE lifted_at IS NULL AND EXISTS (SELECT 1 FROM guard_breakers AS g WHERE g.lifted_at IS NULL "
               "AND g.cluster = guard_breakers.cluster AND g.resource = guard_breakers.resource "
               "AND g.client = guard_breakers.client AND g.id < guard_breakers.id)")
    op.create_index("uq_guard_breakers_open_key", "guard_breakers", ["cluster", "resource", "client"], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    op.drop_index("uq_guard_breakers_open_key", table_name="guard_breakers")
    op.drop_table("guard_delete_counts")
