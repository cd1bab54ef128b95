"""The 1-5-10 watcher: warnings at 80 %, breaches exactly once, escalation.

It compares stored timestamps with the clock; it never keeps a timer.  Each
warning and breach is a timeline event with a dedupe key, so a restart, a
second replica or a late-reached stage evaluated twice records it once.  A
breach pages the next person of the rota (one further step per breach).

Evaluating many incidents at once is bot/domain/slo/mass.py; the background worker
that finds the due ones is bot/domain/slo/worker.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.config import Settings
from bot.core.store import timeline
from bot.domain.slo import paging, rota
from bot.domain.slo.clocks import STAGES, StageClock, StagedIncident, clocks
from bot.core.store import outbox
from bot.core.store.messages import IncidentCard
from bot.core.store.models import Incident, Participant
from bot.core.store.states import ACTIVE_STATES
from bot.core.store.refs import ref_of

_AFTER = timedelta(microseconds=1)  # a budget is breached once the clock is past its deadline


class Escalated(Protocol):
    """What an escalation reads of an incident: an ORM incident or the mass tick's plain row."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def cluster(self) -> str: ...
    @property
    def component(self) -> str | None: ...


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


def next_due(incident: StagedIncident, settings: Settings, now: datetime) -> datetime | None:
    """The first instant after ``now`` when ``evaluate`` will have something new to record.

    For each stage not reached yet: its warning (80 % of the budget), then its
    deadline.  Both are pure functions of stored facts (T0, severity, the stage
    timestamps), so whatever changes them (a move, T0 moving earlier, a raised
    severity) evaluates again or sets the instant to now.
    """
    if incident.state not in ACTIVE_STATES or incident.started_at is None:
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
        outbox.enqueue(session, IncidentCard(incident_id=incident.id), incident_id=incident.id, now=now)
    return event is not None


def escalate(session: Session, incident: Escalated, clock: StageClock, settings: Settings, now: datetime) -> bool:
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
                reason=f"{ref_of(incident.id)} {incident.title}: {clock.label} budget breached",
                dedupe_key=f"page:{incident.id}:escalation:{clock.stage}")
    return True
