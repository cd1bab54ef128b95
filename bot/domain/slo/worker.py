"""The 1-5-10 watcher's background worker: it finds the incidents that are due and evaluates them.

Its cost follows what is due, not what is open: every evaluation stores the
incident's next instant with something to record (``slo_due_at``, indexed,
computed by ``watcher.next_due``), and a tick selects only the incidents whose
instant has come.  With 10,000 incidents open and nothing due a tick is one
index probe; when thousands fall due at once (a storm's incidents share their
T0) they are written in batches (bot/domain/slo/mass.py), each a short transaction,
so people's commands get the writer between batches.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.config import Settings
from bot.domain.slo import mass
from bot.core.store.models import Incident

BATCH = 250  # due incidents evaluated per transaction


def due_ids(session: Session, now: datetime) -> list[int]:
    """Incidents whose stored next instant has come, earliest first (an index range scan)."""
    return list(session.execute(
        select(col(Incident.id)).where(col(Incident.slo_due_at) <= now)
        .order_by(col(Incident.slo_due_at), col(Incident.id))
    ).scalars())


class ClockWorker:
    """What the 1-5-10 workers share: the database, the settings, the clock, the watcher's interval."""

    def __init__(self, db, settings: Settings, clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    @property
    def interval(self) -> float:
        return self.settings.watcher_interval_seconds


class Watcher(ClockWorker):
    """The background worker: one ``tick`` evaluates the incidents that are due."""

    name = "slo-watcher"

    def tick(self) -> int:
        """Find what is due with a read (no write lock), then evaluate it in batches.

        Several replicas may tick at once: on PostgreSQL a batch skips rows
        another replica holds (it evaluates them), and the dedupe keys of
        the timeline make a warning or breach recorded twice impossible anyway.
        """
        now = self.clock.now()
        with self.db.reading() as session:
            due = due_ids(session, now)
        count = 0
        for start in range(0, len(due), BATCH):
            with self.db.session() as session:
                rows = mass.load_due(session, due[start:start + BATCH], now, sqlite=self.db.is_sqlite)
                count += mass.evaluate_many(session, rows, self.settings, now, sqlite=self.db.is_sqlite)
        return count
