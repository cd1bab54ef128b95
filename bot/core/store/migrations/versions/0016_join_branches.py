"""join the branches that parallel work grew from 0004 into one head

Seven migrations were written side by side, each revising 0004 (or one of them):
the schema is the same whatever order they ran in, and ``migrate.upgrade`` took
"heads" for that reason. From here there is one head again, so the next
migration revises 0016 and ``db status`` names one revision. No schema change.

Revision ID: 0016
Revises: 0005, 0007, 0008, 0011, 0013, 0014, 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0016"
down_revision = ("0005", "0007", "0008", "0011", "0013", "0014", "0015")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
