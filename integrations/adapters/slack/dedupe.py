"""Idempotent inbound deliveries: a Slack retry or a double click changes nothing twice.

Slack re-sends an event (same ``event_id``, ``X-Slack-Retry-Num`` 1..3) when our
answer was slow or failed, and an impatient person clicks Approve twice.  The
first delivery inserts a ``ProcessedDelivery`` row; a second one finds it and
is acknowledged without running anything.  The insert is the check, so two
replicas racing on the same delivery cannot both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.core.clock import Clock
from bot.core.store.db import Database
from bot.core.store.models import ProcessedDelivery


def first_time(db: Database, key: str, *, source: str, now: datetime, window_seconds: float | None = None) -> bool:
    """True for the first delivery of ``key``; with a window, a repeat after it counts as new."""
    try:
        with db.session() as session:
            existing = session.get(ProcessedDelivery, key)
            if existing is None:
                session.add(ProcessedDelivery(key=key, source=source, at=now))
                session.flush()
                return True
            if window_seconds is not None and existing.at <= now - timedelta(seconds=window_seconds):
                existing.at = now
                session.add(existing)
                return True
            return False
    except IntegrityError:  # another replica inserted it first
        return False


def prune(db: Database, *, source: str, before: datetime) -> int:
    """Forget deliveries older than ``before`` (Slack stops retrying after minutes)."""
    with db.session() as session:
        result = session.exec(  # exec, not execute: SQLModel types a DML result as a CursorResult (rowcount)
            delete(ProcessedDelivery).where(col(ProcessedDelivery.source) == source,
                                            col(ProcessedDelivery.at) < before)
        )
        return int(result.rowcount or 0)


class Pruner:
    """A worker keeping ``processed_deliveries`` small: inbound keys live a day, outbox steps a week."""

    name = "slack-deliveries-pruner"
    interval = 3600.0
    KEEP = {"slack": timedelta(days=1), "slack-outbox": timedelta(days=7)}

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def tick(self) -> int:
        now = self.clock.now()
        return sum(prune(self.db, source=source, before=now - keep) for source, keep in self.KEEP.items())
