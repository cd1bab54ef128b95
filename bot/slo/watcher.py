"""The 1-5-10 watcher: warnings at 80 %, breaches exactly once, escalation.

It compares stored timestamps with the clock; it never keeps a timer.  Each
warning and breach is a timeline event with a dedupe key, so a restart, a
second replica or a late-reached stage evaluated twice records it once.  A
breach pages the next person of the rota (one further step per breach).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from bot.config import Settings
from bot.incidents import timeline
from bot.slo import paging, rota
from bot.slo.clocks import StageClock, clocks
from bot.store import outbox
from bot.store.models import Incident, Participant

ACTIVE = ("detected", "notified", "diagnosing", "diagnosed", "mitigating", "mitigated")


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
                if _escalate(session, incident, clock, settings, now):
                    recorded.append("escalation.paged")
    return recorded


def _record(session: Session, incident: Incident, clock: StageClock, kind: str, now: datetime) -> bool:
    assert incident.id is not None
    word = "warning" if kind == "slo.warning" else "breach"
    text = f"{word}: {clock.describe()}"
    event = timeline.record(
        session,
        incident.id,
        kind,
        text,
        at=now,
        actor="watcher",
        source="watcher",
        data={
            "stage": clock.stage,
            "budget_seconds": clock.budget_seconds,
            "deadline": clock.deadline.isoformat(),
            "elapsed_seconds": round(clock.elapsed_seconds, 3),
            "reached_at": clock.reached_at.isoformat() if clock.reached_at else None,
        },
        dedupe_key=f"{kind}:{clock.stage}",
    )
    if event is not None:
        outbox.enqueue(session, kind="incident.card", incident_id=incident.id, payload={"incident_id": incident.id},
                       coalesce_key=f"card:{incident.id}", now=now)
    return event is not None


def _escalate(session: Session, incident: Incident, clock: StageClock, settings: Settings, now: datetime) -> bool:
    assert incident.id is not None
    level = len(timeline.events(session, incident.id, kinds=["slo.breach"]))
    paged = {
        p.user
        for p in session.execute(
            select(Participant).where(Participant.incident_id == incident.id, Participant.role == "commander", Participant.active)
        ).scalars()
    }
    target = rota.escalation_target(settings.oncall, now, level, exclude=paged)
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


def active_incidents(session: Session) -> list[Incident]:
    return list(session.execute(select(Incident).where(Incident.state.in_(ACTIVE))).scalars())  # type: ignore[attr-defined]


class Watcher:
    """The background worker: one ``tick`` evaluates every active incident."""

    name = "slo-watcher"

    def __init__(self, db, settings: Settings, clock) -> None:  # type: ignore[no-untyped-def]
        self.db = db
        self.settings = settings
        self.clock = clock

    @property
    def interval(self) -> float:
        return self.settings.watcher_interval_seconds

    def tick(self) -> int:
        now = self.clock.now()
        count = 0
        with self.db.session() as session:
            for incident in active_incidents(session):
                count += len(evaluate(session, incident, self.settings, now))
        return count



