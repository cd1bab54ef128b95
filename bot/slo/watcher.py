"""The 1-5-10 watcher: warnings at 80 %, breaches exactly once, escalation.

It compares stored timestamps with the clock; it never keeps a timer.  Each
warning and breach is a timeline event with a dedupe key, so a restart, a
second replica or a late-reached stage evaluated twice records it once.  A
breach pages the next person of the rota (one further step per breach).

Its cost follows what is due, not what is open: every evaluation stores the
incident's next instant with something to record (``slo_due_at``, indexed),
and a tick selects only the incidents whose instant has come.  With 10,000
incidents open and nothing due a tick is one index probe; when thousands
fall due at once (a storm's incidents share their T0) they are written in
batches, each a short transaction, so people's commands get the writer
between batches.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from bot.config import Settings
from bot.incidents import timeline
from bot.slo import paging, rota
from bot.slo.clocks import STAGES, StageClock, clocks
from bot.store import outbox
from bot.store.models import Incident, Participant

ACTIVE = ("detected", "notified", "diagnosing", "diagnosed", "mitigating", "mitigated")
BATCH = 250  # due incidents evaluated per transaction
_AFTER = timedelta(microseconds=1)  # a budget is breached once the clock is past its deadline


def evaluate(session: Session, incident: Incident, settings: Settings, now: datetime) -> list[str]:
    """Record due warnings/breaches for one incident; returns the kinds recorded."""
    assert incident.id is not None
    recorded: list[str] = []
    for clock in clocks(incident, settings.budgets, now):
        if clock.verdict == "warning":
            if _record(session, incident, clock, "slo.warning", now):
                recorded.append("slo.warning")
        elif clock.verdict == "breached":
            if _record(session, incident, clock, "slo.breach", now):
                recorded.append("slo.breach")
                if escalate(session, incident, clock, settings, now):
                    recorded.append("escalation.paged")
    incident.slo_due_at = next_due(incident, settings, now)
    session.add(incident)
    return recorded


def next_due(incident: Incident, settings: Settings, now: datetime) -> datetime | None:
    """The first instant after ``now`` when ``evaluate`` will have something new to record.

    For each stage not reached yet: its warning (80 % of the budget), then its
    deadline.  Both are pure functions of stored facts (T0, severity, the stage
    timestamps), so whatever changes them (a move, T0 moving earlier, a raised
    severity) evaluates again or sets the instant to now.
    """
    if incident.state not in ACTIVE or incident.started_at is None:
        return None
    budgets = settings.budgets.for_severity(incident.severity)
    upcoming = []
    for stage, (attr, _label) in STAGES.items():
        if getattr(incident, attr) is not None:
            continue
        budget = timedelta(seconds=float(getattr(budgets, stage)))
        warn_at = incident.started_at + budget * settings.budgets.warn_ratio
        upcoming += [t for t in (warn_at, incident.started_at + budget + _AFTER) if t > now][:1]
    return min(upcoming, default=None)


def event_of(clock: StageClock, kind: str) -> tuple[str, dict[str, object]]:
    """The timeline text and data of a warning or breach (one shape for one incident and for many)."""
    word = "warning" if kind == "slo.warning" else "breach"
    return f"{word}: {clock.describe()}", {
        "stage": clock.stage,
        "budget_seconds": clock.budget_seconds,
        "deadline": clock.deadline.isoformat(),
        "elapsed_seconds": round(clock.elapsed_seconds, 3),
        "reached_at": clock.reached_at.isoformat() if clock.reached_at else None,
    }


def _record(session: Session, incident: Incident, clock: StageClock, kind: str, now: datetime) -> bool:
    assert incident.id is not None
    text, data = event_of(clock, kind)
    event = timeline.record(session, incident.id, kind, text, at=now, actor="watcher", source="watcher",
                            data=data, dedupe_key=f"{kind}:{clock.stage}")
    if event is not None:
        outbox.enqueue(session, kind="incident.card", incident_id=incident.id, payload={"incident_id": incident.id},
                       coalesce_key=f"card:{incident.id}", now=now)
    return event is not None


def escalate(session: Session, incident: Incident, clock: StageClock, settings: Settings, now: datetime) -> bool:
    """A breach pages the next person of the rota (one further step per breach)."""
    assert incident.id is not None
    level = len(timeline.events(session, incident.id, kinds=["slo.breach"]))
    paged = {
        p.user
        for p in session.execute(
            select(Participant).where(col(Participant.incident_id) == incident.id,
                                      col(Participant.role) == "commander", col(Participant.active))
        ).scalars()
    }
    target = rota.escalation_target(settings.oncall, now, level, exclude=paged, cluster=incident.cluster,
                                    component=incident.component)
    if target is None:
        return False
    event = timeline.record(
        session,
        incident.id,
        "escalation.paged",
        f"escalated to @{target}: {clock.label} budget breached",
        at=now,
        actor="watcher",
        source="watcher",
        data={"user": target, "stage": clock.stage, "level": level},
        dedupe_key=f"escalation:{clock.stage}",
    )
    if event is None:
        return False
    paging.page(session, settings, incident_id=incident.id, user=target, level=level, now=now,
                reason=f"INC-{incident.id} {incident.title}: {clock.label} budget breached",
                dedupe_key=f"page:{incident.id}:escalation:{clock.stage}")
    return True


def due_ids(session: Session, now: datetime) -> list[int]:
    """Incidents whose stored next instant has come, earliest first (an index range scan)."""
    return list(session.execute(
        select(col(Incident.id)).where(col(Incident.slo_due_at) <= now)  # type: ignore[arg-type,operator]
        .order_by(col(Incident.slo_due_at), col(Incident.id))  # type: ignore[arg-type]
    ).scalars())


class Watcher:
    """The background worker: one ``tick`` evaluates the incidents that are due."""

    name = "slo-watcher"

    def __init__(self, db, settings: Settings, clock) -> None:  # type: ignore[no-untyped-def]
        self.db = db
        self.settings = settings
        self.clock = clock

    @property
    def interval(self) -> float:
        return self.settings.watcher_interval_seconds

    def tick(self) -> int:
        """Find what is due with a read (no write lock), then evaluate it in batches.

        Several replicas may tick at once: on PostgreSQL a batch skips rows
        another replica holds (it evaluates them), and the dedupe keys of
        the timeline make a warning or breach recorded twice impossible anyway.
        """
        from bot.slo import mass  # it builds on this module's records

        now = self.clock.now()
        with self.db.reading() as session:
            due = due_ids(session, now)
        count = 0
        for start in range(0, len(due), BATCH):
            with self.db.session() as session:
                query = select(Incident).where(col(Incident.id).in_(due[start:start + BATCH]),  # type: ignore[union-attr]
                                               col(Incident.slo_due_at) <= now)  # type: ignore[arg-type,operator]
                if not self.db.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                active = []
                for incident in session.execute(query.order_by(col(Incident.id))).scalars():  # type: ignore[arg-type]
                    if incident.state in ACTIVE:
                        active.append(incident)
                    else:
                        incident.slo_due_at = None
                        session.add(incident)
                count += mass.evaluate_many(session, active, self.settings, now, sqlite=self.db.is_sqlite)
        return count
