"""What the web board shows, read in a few set-based queries (the board of 200 incidents renders in well under 200 ms).

``board`` gathers the open incidents with their commander, clocks, per-cluster
state (fleet incidents) and the playbook run in progress with its current
step; titles and causes go through the export's redactor, so the board
never shows a secret someone pasted into chat.  Most urgent first: breached,
then warning, then by severity and the nearest deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.clock import human_duration
from bot.core.config import Settings
from bot.domain.export.redact import Redactor
from bot.core.store.states import ACTIVE_STATES
from bot.core.store.refs import ref_of
from bot.domain.slo.clocks import StageClock, clocks, stage_clock
from bot.core.store.models import (
    Incident,
    IncidentCluster,
    Participant,
    PlaybookRun,
    RunStep,
    table_of,
)

LIVE_RUN_STATES = ("awaiting_approval", "approved", "running")
LEVEL_ORDER = {"breached": 0, "warning": 1, "ok": 2}


@dataclass(frozen=True)
class Clock:
    stage: str
    verdict: str
    budget_seconds: float
    deadline_ms: int
    reached: bool
    text: str  # what the clock shows until the script takes over: "4m10s left", "over 1m05s", "notified 0s"


def _clock(c: StageClock) -> Clock:
    if c.reached_at is not None:
        text = f"{c.label} {human_duration(c.elapsed_seconds)}"
    elif c.verdict == "stopped":
        text = "—"
    elif c.remaining_seconds >= 0:
        text = f"{human_duration(c.remaining_seconds)} left"
    else:
        text = f"over {human_duration(-c.remaining_seconds)}"
    return Clock(c.stage, c.verdict, c.budget_seconds, int(c.deadline.timestamp() * 1000), c.reached_at is not None, text)


def _level(cs: list[Clock]) -> str:
    verdicts = {c.verdict for c in cs}
    return "breached" if "breached" in verdicts else "warning" if "warning" in verdicts else "ok"


def _cluster_rows(session: Session, ids: list[int]) -> dict[int, list[IncidentCluster]]:
    out: dict[int, list[IncidentCluster]] = {}
    if ids:
        for row in session.execute(select(IncidentCluster).where(col(IncidentCluster.incident_id).in_(ids))
                                   .order_by(col(IncidentCluster.cluster))).scalars():
            out.setdefault(row.incident_id, []).append(row)
    return out


def _commanders(session: Session, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    if ids:
        for incident_id, user in session.execute(
            select(col(Participant.incident_id), col(Participant.user)).where(
                col(Participant.incident_id).in_(ids), col(Participant.role) == "commander", col(Participant.active))
            .order_by(col(Participant.id))):
            out[incident_id] = user
    return out


def _live_runs(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    runs = list(session.execute(select(PlaybookRun).where(
        col(PlaybookRun.incident_id).in_(ids), col(PlaybookRun.state).in_(LIVE_RUN_STATES))
        .order_by(col(PlaybookRun.id))).scalars()) if ids else []
    steps: dict[int, RunStep] = {}
    if runs:
        for step in session.execute(select(RunStep).where(col(RunStep.run_id).in_([r.id for r in runs]))
                                    .order_by(col(RunStep.id))).scalars():
            if step.state == "running" or step.run_id not in steps or steps[step.run_id].state != "running":
                steps[step.run_id] = step
    out: dict[int, dict[str, Any]] = {}
    for run in runs:
        step = steps.get(run.id)
        if run.state == "awaiting_approval":
            current = "waiting for approval"
        elif step is not None:
            current = f"{step.phase} step {step.index + 1}: {step.name} ({step.state})"
        else:
            current = f"step {run.checkpoint + 1}"
        out[run.incident_id] = {"ref": f"RUN-{run.id}", "playbook": run.playbook, "state": run.state,
                                "step": current}
    return out


def board(session: Session, settings: Settings, now: datetime, redactor: Redactor) -> list[dict[str, Any]]:
    """Every open incident as the board shows it, most urgent first."""
    # plain rows, not ORM objects: building 200 sqlmodel instances costs more than the rest of the board
    incidents = list(session.execute(select(*table_of(Incident).c).where(
        col(Incident.state).in_(sorted(ACTIVE_STATES)))).all())
    ids = [i.id for i in incidents if i.id is not None]
    commanders, runs, fleets = _commanders(session, ids), _live_runs(session, ids), _cluster_rows(session, ids)
    cards = []
    for inc in incidents:
        cs = [_clock(c) for c in clocks(inc, settings.budgets, now)]
        stage_budgets = settings.budgets.for_severity(inc.severity)
        clusters = []
        for row in fleets.get(inc.id, []):
            view = SimpleNamespace(started_at=row.started_at, state=row.state, notified_at=row.notified_at,
                                   diagnosed_at=row.diagnosed_at, mitigated_at=row.mitigated_at,
                                   cancelled_at=None, resolved_at=None)
            verdicts = [stage_clock(view, s, stage_budgets, now, settings.budgets.warn_ratio) for s in
                        ("notify", "diagnose", "mitigate")]
            clusters.append({"cluster": row.cluster, "state": row.state,
                             "level": _level([_clock(v) for v in verdicts])})
        pending = [c for c in cs if not c.reached]
        cards.append({
            "id": inc.id, "ref": ref_of(inc.id), "title": redactor.text(inc.title), "severity": inc.severity,
            "state": inc.state, "cluster": inc.cluster, "component": inc.component, "is_drill": inc.is_drill,
            "commander": commanders.get(inc.id),
            "root_cause": redactor.text(inc.root_cause) if inc.root_cause else None,
            "clocks": cs, "level": _level(cs), "clusters": clusters, "run": runs.get(inc.id),
            "next_deadline_ms": min((c.deadline_ms for c in pending), default=2**62),
        })
    cards.sort(key=lambda c: (LEVEL_ORDER[c["level"]], c["severity"], c["next_deadline_ms"], c["id"]))
    return cards
