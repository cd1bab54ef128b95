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
from bot.store.models import Incident, Participant, TimelineEvent

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


def _recorded_keys(session: Session, incident_ids: list[int]) -> set[tuple[int, str]]:
    """The warnings and breaches already on the timeline of these incidents."""
    if not incident_ids:
        return set()
    rows = session.execute(
        select(TimelineEvent.incident_id, TimelineEvent.dedupe_key).where(
            TimelineEvent.incident_id.in_(incident_ids),  # type: ignore[attr-defined]
            TimelineEvent.kind.in_(["slo.warning", "slo.breach"]),  # type: ignore[attr-defined]
        )
    )
    return {(incident_id, key) for incident_id, key in rows if key}


def is_due(incident: Incident, recorded: set[tuple[int, str]], settings: Settings, now: datetime) -> bool:
    """Whether ``evaluate`` would record something new for this incident now."""
    for clock in clocks(incident, settings.budgets, now):
        kind = {"warning": "slo.warning", "breached": "slo.breach"}.get(clock.verdict)
        if kind and (incident.id, f"{kind}:{clock.stage}") not in recorded:
            return True
    return False


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
        """Read every active incident in one short transaction, then write only where
        something is due: with hundreds of open incidents (an alert storm) the watcher
        must not hold SQLite's write lock while it computes clocks."""
        now = self.clock.now()
        with self.db.session() as session:
            incidents = active_incidents(session)
            recorded = _recorded_keys(session, [i.id for i in incidents if i.id is not None])
        due = [i.id for i in incidents if is_due(i, recorded, self.settings, now)]
        count = 0
        for incident_id in due:
            with self.db.session() as session:
                incident = session.get(Incident, incident_id)
                if incident is not None and incident.state in ACTIVE:
                    count += len(evaluate(session, incident, self.settings, now))
        return count
