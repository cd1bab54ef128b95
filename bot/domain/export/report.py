"""The 1-5-10 report across incidents: how fast each stage is reached, how often in budget, where it breaks.

For every incident that began in the window: time from T0 to detection,
acknowledgement, announcement (notify), root cause (diagnose) and recovery
(mitigate); per stage the median and 90th percentile and the share of decided
incidents that met the budget.  A stage is *decided* when it was reached, or
its deadline passed unreached while the incident was still open; a cancelled
false positive does not count against diagnosis and recovery.  Drills are
reported apart from real incidents: a rehearsal must not flatter (or spoil)
the real record.  Breaches are counted by cause (component, else root cause)
and by cluster; open action items are listed most urgent first; and per cluster the error budget
left of each service-level objective (``bot.domain.slo.budgets``: pod creation, pod latency,
availability, API latency) over the same window, from the probes' stored tallies.

Nothing here reads the wall clock: ``now`` is passed in.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.config import Settings
from bot.domain.incidents import action_items
from bot.core.store.refs import ref_of
from bot.domain.slo import budgets as slo_budgets
from bot.domain.slo.clocks import STAGES, stage_clock
from bot.core.store.models import Incident

REPORT_VERSION = "1"
# timings that are not budgeted stages: (name, attribute, what people call it)
MILESTONES = (("detect", "detected_at", "time to detect"), ("acknowledge", "acknowledged_at", "time to acknowledge"))
STAGE_TITLES = {"notify": "Announce (1 min)", "diagnose": "Root cause (5 min)", "mitigate": "Recover (10 min)"}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100): a value that really occurred, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def _timing(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "median_seconds": round(statistics.median(values), 3) if values else None,
            "p90_seconds": percentile(values, 90)}


def _cause(incident: Incident) -> str:
    if incident.component:
        return incident.component
    if incident.root_cause:
        text = " ".join(incident.root_cause.split())
        return text if len(text) <= 60 else text[:59] + "…"
    return "undiagnosed"


def _group(incidents: list[Incident], settings: Settings, now: datetime) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    breaches_by_stage: Counter[str] = Counter()
    by_cause: Counter[str] = Counter()
    by_cluster: Counter[str] = Counter()
    breached_incidents: set[int] = set()
    for name in STAGES:
        elapsed: list[float] = []
        met = breached = 0
        for inc in incidents:
            clock = stage_clock(inc, name, settings.budgets.for_severity(inc.severity), now, settings.budgets.warn_ratio)
            if clock.reached_at is not None:
                elapsed.append(clock.elapsed_seconds)
            if clock.verdict == "met":
                met += 1
            elif clock.verdict == "breached":
                breached += 1
                breaches_by_stage[name] += 1
                if inc.id not in breached_incidents:
                    breached_incidents.add(inc.id)
                    by_cause[_cause(inc)] += 1
                    by_cluster[inc.cluster] += 1
        decided = met + breached
        stages[name] = {**_timing(elapsed), "title": STAGE_TITLES[name], "met": met, "breached": breached,
                        "decided": decided, "met_ratio": round(met / decided, 4) if decided else None}
    milestones = {}
    for name, attribute, label in MILESTONES:
        values = [(getattr(inc, attribute) - inc.started_at).total_seconds() for inc in incidents
                  if getattr(inc, attribute, None) is not None and inc.started_at is not None]
        milestones[name] = {**_timing([max(0.0, v) for v in values]), "title": label}
    all_met = sum(1 for inc in incidents if inc.id not in breached_incidents
                  and all(stage_clock(inc, s, settings.budgets.for_severity(inc.severity), now).verdict == "met"
                          for s in STAGES))
    return {
        "count": len(incidents),
        "all_three_met": all_met,
        "stages": stages,
        "milestones": milestones,
        "breaches": {
            "incidents": len(breached_incidents),
            "by_stage": [{"stage": k, "count": v} for k, v in sorted(breaches_by_stage.items(), key=lambda kv: (-kv[1], kv[0]))],
            "by_cause": [{"cause": k, "count": v} for k, v in sorted(by_cause.items(), key=lambda kv: (-kv[1], kv[0]))],
            "by_cluster": [{"cluster": k, "count": v} for k, v in sorted(by_cluster.items(), key=lambda kv: (-kv[1], kv[0]))],
        },
    }


def _row(inc: Incident, settings: Settings, now: datetime) -> dict[str, Any]:
    budgets = settings.budgets.for_severity(inc.severity)
    verdicts = {s: stage_clock(inc, s, budgets, now, settings.budgets.warn_ratio) for s in STAGES}
    return {
        "ref": ref_of(inc.id), "title": inc.title, "severity": inc.severity, "cluster": inc.cluster,
        "state": inc.state, "is_drill": inc.is_drill, "started_at": inc.started_at.isoformat(),
        "stages": {s: {"verdict": c.verdict, "seconds": round(c.elapsed_seconds, 3) if c.reached_at else None}
                   for s, c in verdicts.items()},
    }


def build(session: Session, settings: Settings, *, now: datetime, since: datetime,
          cluster: str | None = None) -> dict[str, Any]:
    """The report tree (the JSON format; Markdown and HTML are views of it)."""
    query = (select(Incident).where(col(Incident.started_at) >= since)
             .order_by(col(Incident.started_at), col(Incident.id)))
    if cluster:
        query = query.where(col(Incident.cluster) == cluster)
    incidents = list(session.execute(query).scalars())
    real = [i for i in incidents if not i.is_drill]
    drills = [i for i in incidents if i.is_drill]
    real_group = _group(real, settings, now)
    items = action_items.open_items(session, cluster=cluster)
    today = now.date()
    return {
        "report_version": REPORT_VERSION,
        "window": {"since": since.isoformat(), "until": now.isoformat(), "cluster": cluster},
        "budgets": {"notify": settings.budgets.default.notify, "diagnose": settings.budgets.default.diagnose,
                    "mitigate": settings.budgets.default.mitigate},
        "incidents": {"total": len(incidents), "real": len(real), "drills": len(drills)},
        # the headline numbers are the real incidents'; drills are reported beside them
        "stages": real_group["stages"],
        "milestones": real_group["milestones"],
        "breaches": real_group["breaches"],
        "all_three_met": real_group["all_three_met"],
        "drills": _group(drills, settings, now),
        # what customers felt: the error budget left of each objective per cluster over the window
        "error_budgets": [b.as_dict() for b in slo_budgets.budgets(session, now, window=now - since, cluster=cluster)],
        "open_action_items": [{
            "id": a.id, "incident": ref_of(i.id), "text": a.text, "owner": a.owner, "priority": a.priority,
            "due_on": a.due_on.isoformat() if a.due_on else None, "overdue": bool(a.due_on and a.due_on < today),
            "tracker_url": a.tracker_url,
        } for a, i in items],
        "rows": [_row(i, settings, now) for i in incidents],
    }
