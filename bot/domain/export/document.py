"""The post-mortem document: the incident's stored facts gathered into one plain tree.

This tree *is* the JSON export (schema ``schema/postmortem-v2.json``); the
Markdown and HTML renderings are views of it.  Building it once, redacting it
once, then rendering keeps the three formats in agreement, and means a secret
cannot slip into one format through a path the others do not take.

Determinism: nothing here reads the wall clock.  Stage verdicts are computed
"as of" the last fact of the incident (or an explicit ``as_of``), every list
has a total order (time, then id), and free-form mappings are key-sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from typing import Any

import json

from sqlalchemy import Text, cast, select
from sqlmodel import Session, col

from bot.core.config import Settings
from bot.domain.export import evidence, timefmt
from bot.domain.incidents import review
from bot.domain.export.redact import Redactor
from bot.domain.incidents import fleet
from bot.core.store.refs import ref_of
from bot.domain.slo.clocks import STAGES, stage_clock
from bot.domain.diagnosis import changes as change_log
from bot.core.store.models import (ActionItem, Alert, Approval, EvidenceSection, Incident, Participant, PlaybookRun,
                              RunStep, TimelineEvent, table_of)

SCHEMA_VERSION = "2"
SCHEMA_ID = "https://incident-bot.invalid/schema/postmortem-v2.json"
VERDICTS = ("met", "breached", "never-reached")
STAGE_TITLES = {"notify": "Discover & announce", "diagnose": "Locate the root cause", "mitigate": "Recover"}
# clocks.py's verdicts fold into the post-mortem's three: a stage not reached and not late
# (stopped, or still running/warning as of the last fact) is "never reached".
_EVENTS = table_of(TimelineEvent).c
# the evidence column is read as its JSON text: checked for secrets as text, parsed once
_EVENT_COLUMNS = [_EVENTS.id, _EVENTS.at, _EVENTS.kind, _EVENTS.actor, _EVENTS.source, _EVENTS.text,
                  cast(_EVENTS.data, Text).label("data")]


def cluster_verdicts(session: Session, incident: Incident, settings: Settings, as_of: datetime,
                     iso: Any) -> list[dict[str, Any]]:
    """Each cluster of a (fleet) incident with its facts and one verdict: breached, met or never-reached."""
    out = []
    for c in fleet.facts(session, incident, settings.budgets, as_of):
        verdicts = {k.stage: k.verdict for k in c.clocks}
        verdict = ("breached" if "breached" in verdicts.values()
                   else "met" if set(verdicts.values()) == {"met"} else "never-reached")
        out.append({"name": c.name, "state": c.state, "started_at": iso(c.started_at),
                    "detected_at": iso(c.detected_at), "notified_at": iso(c.notified_at),
                    "diagnosed_at": iso(c.diagnosed_at), "mitigated_at": iso(c.mitigated_at), "verdict": verdict})
    return out


def t0_sections(session: Session, incident: Incident, settings: Settings, iso: Any) -> dict[str, Any]:
    """``evidence_at_t0`` (frozen sections, gaps included) and ``changes_before_t0`` (ranked, nearest first)."""
    rows = session.execute(select(EvidenceSection).where(col(EvidenceSection.incident_id) == incident.id)
                           .order_by(col(EvidenceSection.section))).scalars()
    t0 = incident.started_at
    changes = (change_log.ranked(change_log.rows_before_t0(session, incident.cluster, t0,
                                                            settings.evidence.changes_window_seconds),
                                 t0, incident.component))
    return {
        "evidence_at_t0": [{"section": r.section, "status": r.status, "captured_at": iso(r.captured_at),
                            "window_start": iso(r.window_start), "window_end": iso(r.window_end),
                            "size_bytes": r.size_bytes, "error": r.error, "data": canon(r.data)} for r in rows],
        "changes_before_t0": changes,
    }


@dataclass(frozen=True)
class Options:
    """How to present the document: the reader's zone and the optional moments."""

    tz_name: str
    tz: tzinfo
    as_of: datetime | None = None
    generated_at: datetime | None = None


def canon(value: Any) -> Any:
    """A JSON-like value with mapping keys sorted, recursively (stable output)."""
    if isinstance(value, dict):
        return {str(k): canon(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canon(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _seconds(a: datetime | None, t0: datetime) -> float | None:
    return None if a is None else round((a - t0).total_seconds(), 3)


def _event(row: Any, t0: datetime, tz: tzinfo, redactor: Redactor) -> dict[str, Any]:
    """One timeline event, redacted; the common clean event costs one substring scan, no tree walk."""
    ev_id, at, kind, actor, source, text, raw = row
    if not isinstance(raw, str):  # a driver that hands back parsed JSON
        raw = json.dumps(raw or {}, ensure_ascii=False)
    data = json.loads(raw) if raw not in ("{}", "null", "") else {}
    if redactor.might_hold_secret(f"{actor}\x00{source}\x00{text}\x00{raw}"):
        actor, source, text = redactor.text(actor), redactor.text(source), redactor.text(text)
        data = redactor.value(canon(data))
    return {
        "id": ev_id, "at": at.astimezone(tz).isoformat(), "offset_seconds": round((at - t0).total_seconds(), 3),
        "kind": kind, "actor": actor, "source": source, "text": text, "data": data,
        "summary": evidence.summary(data),
    }


Iso = Callable[[datetime | None], str | None]


def build(session: Session, incident: Incident, settings: Settings, options: Options,
          redactor: Redactor) -> dict[str, Any]:
    """Gather every stored fact of ``incident`` into the v2 document tree, redacted by ``redactor``."""
    tz = options.tz
    t0 = incident.started_at

    def iso(value: datetime | None) -> str | None:
        return timefmt.iso(value, tz)

    # -- the timeline (the bulk: read as plain rows, not ORM objects, for speed) --
    rows = session.execute(
        select(*_EVENT_COLUMNS).where(col(TimelineEvent.incident_id) == incident.id)
        .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
    ).all()
    timeline = [_event(row, t0, tz, redactor) for row in rows]
    alerts = list(session.execute(
        select(Alert).where(col(Alert.incident_id) == incident.id).order_by(col(Alert.starts_at), col(Alert.id))
    ).scalars())
    runs = list(session.execute(
        select(PlaybookRun).where(col(PlaybookRun.incident_id) == incident.id).order_by(col(PlaybookRun.id))
    ).scalars())
    actions = list(session.execute(
        select(ActionItem).where(col(ActionItem.incident_id) == incident.id).order_by(col(ActionItem.id))
    ).scalars())

    # -- the 1-5-10 verdicts, as of the last fact (never the wall clock) --
    facts = [incident.started_at, incident.detected_at, incident.notified_at, incident.diagnosed_at,
             incident.mitigated_at, incident.resolved_at, incident.closed_at, incident.cancelled_at]
    if rows:
        facts.append(rows[-1][1])
    last_fact = max(f for f in facts if f is not None)
    as_of = max(last_fact, options.as_of) if options.as_of else last_fact
    budgets = settings.budgets.for_severity(incident.severity)
    stages = _stages(incident, settings, as_of, iso)
    written = review.gather(timeline)  # already redacted with the timeline
    today = as_of.astimezone(tz).date()

    doc = {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "export": {
            "timezone": options.tz_name,
            "as_of": iso(as_of),
            "generated_at": iso(options.generated_at),
        },
        "incident": _incident_doc(session, incident, runs, iso),
        "slo": {
            "budgets": {"notify": budgets.notify, "diagnose": budgets.diagnose, "mitigate": budgets.mitigate},
            "stages": stages,
            "summary": {v: sum(1 for s in stages if s["verdict"] == v) for v in VERDICTS},
            "clusters": cluster_verdicts(session, incident, settings, as_of, iso),
            "acknowledged_at": iso(incident.acknowledged_at),
            "acknowledged_by": incident.acknowledged_by,
        },
        "timeline": timeline,
        "alerts": [_alert_doc(a, iso) for a in alerts],
        "diagnosis": [ev for ev in timeline if ev["kind"].startswith("diagnosis.")],
        "runs": _run_docs(session, runs, timeline, iso),
        "action_items": [_action_doc(a, iso, today) for a in actions],
        "review": written,
        "review_prompts": [{"section": s.key, "title": s.title, "prompt": s.prompt} for s in review.missing(written)],
        **t0_sections(session, incident, settings, iso),
    }
    return {key: (value if key in {"timeline", "diagnosis", "review"} else redactor.value(value))
            for key, value in doc.items()}


def _stages(incident: Incident, settings: Settings, as_of: datetime, iso: Iso) -> list[dict[str, Any]]:
    """Each stage of the 1-5-10 with its verdict folded into met / breached / never-reached."""
    budgets = settings.budgets.for_severity(incident.severity)
    stages = []
    for name in STAGES:
        clock = stage_clock(incident, name, budgets, as_of, settings.budgets.warn_ratio)
        if clock.reached_at is not None:
            verdict = "met" if clock.reached_at <= clock.deadline else "breached"
        else:
            verdict = "breached" if clock.verdict == "breached" else "never-reached"
        over = -clock.remaining_seconds if verdict == "breached" else None
        stages.append({
            "stage": name, "title": STAGE_TITLES[name], "label": clock.label,
            "budget_seconds": clock.budget_seconds, "deadline": iso(clock.deadline),
            "reached_at": iso(clock.reached_at),
            "elapsed_seconds": round(clock.elapsed_seconds, 3) if clock.reached_at else None,
            "verdict": verdict,
            "breached_by_seconds": round(over, 3) if over is not None else None,
            "stopped_after_seconds": None if clock.reached_at else round(clock.elapsed_seconds, 3),
        })
    return stages


def _incident_doc(session: Session, incident: Incident, runs: list[PlaybookRun], iso: Iso) -> dict[str, Any]:
    """The incident's own facts: who played which part, its times, and what mitigated it."""
    t0 = incident.started_at
    participants = list(session.execute(
        select(Participant).where(col(Participant.incident_id) == incident.id).order_by(col(Participant.id))
    ).scalars())
    roles: dict[str, list[str]] = {"commander": [], "scribe": [], "responder": []}
    for p in participants:
        if p.active:
            roles.setdefault(p.role, []).append(p.user)
    mitigation = incident.mitigation
    if not mitigation:
        done = [r for r in runs if r.state in {"succeeded", "completed", "done"}]
        if done:
            mitigation = f"playbook {done[-1].playbook} (RUN-{done[-1].id}) {done[-1].state}"
    return {
        "id": incident.id, "ref": ref_of(incident.id), "title": incident.title, "state": incident.state,
        "severity": incident.severity, "cluster": incident.cluster, "component": incident.component,
        "source": incident.source, "is_drill": incident.is_drill, "group_key": incident.group_key,
        "root_cause": incident.root_cause, "mitigation": mitigation,
        "roles": roles,
        "participants": [{"user": p.user, "role": p.role, "active": p.active, "assigned_by": p.assigned_by,
                          "assigned_at": iso(p.assigned_at)} for p in participants],
        "times": {name: iso(getattr(incident, name)) for name in
                  ("started_at", "detected_at", "notified_at", "diagnosed_at", "mitigated_at",
                   "resolved_at", "closed_at", "cancelled_at")},
        "durations": {
            "detection_seconds": _seconds(incident.detected_at, t0),
            "impact_seconds": _seconds(incident.mitigated_at, t0),
            "total_seconds": _seconds(incident.resolved_at or incident.cancelled_at, t0),
        },
    }


def _run_docs(session: Session, runs: list[PlaybookRun], timeline: list[dict[str, Any]],
              iso: Iso) -> list[dict[str, Any]]:
    """Each playbook run with its plan, approvals (and whether they match the plan), steps and events."""
    run_ids = [r.id for r in runs]
    steps: dict[int | None, list[RunStep]] = {rid: [] for rid in run_ids}
    approvals: dict[int | None, list[Approval]] = {rid: [] for rid in run_ids}
    if run_ids:
        for step in session.execute(
            select(RunStep).where(col(RunStep.run_id).in_(run_ids)).order_by(col(RunStep.run_id), col(RunStep.id))
        ).scalars():
            steps[step.run_id].append(step)
        for approval in session.execute(
            select(Approval).where(col(Approval.run_id).in_(run_ids)).order_by(col(Approval.at), col(Approval.id))
        ).scalars():
            approvals[approval.run_id].append(approval)
    run_events: dict[int | None, list[dict[str, Any]]] = {rid: [] for rid in run_ids}
    for ev in timeline:
        if ev["kind"].startswith("run.") and ev["data"].get("run_id") in run_events:
            run_events[ev["data"]["run_id"]].append(ev)
    return [{
        "id": run.id, "ref": f"RUN-{run.id}", "playbook": run.playbook, "cluster": run.cluster, "risk": run.risk,
        "state": run.state, "params": canon(run.params), "requested_by": run.requested_by,
        "requested_at": iso(run.requested_at), "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at), "auto_approved": run.auto_approved, "error": run.error,
        "plan_hash": run.plan_hash, "plan_text": run.plan_text, "plan": canon(run.plan),
        "approvals": [{
            "user": a.user, "decision": a.decision, "at": iso(a.at), "plan_hash": a.plan_hash,
            "matches_plan": a.plan_hash == run.plan_hash, "expires_at": iso(a.expires_at),
            "reason": a.reason, "source": a.source,
        } for a in approvals[run.id]],
        "steps": [{
            "index": s.index, "phase": s.phase, "name": s.name, "state": s.state,
            "started_at": iso(s.started_at), "finished_at": iso(s.finished_at), "attempts": s.attempts,
            "duration_seconds": _seconds(s.finished_at, s.started_at) if s.started_at else None,
            "result": canon(s.result), "error": s.error,
        } for s in steps[run.id]],
        "event_ids": [e["id"] for e in run_events[run.id]],
    } for run in runs]


def _alert_doc(a: Alert, iso: Iso) -> dict[str, Any]:
    """One stored alert as Alertmanager sent it (labels and annotations sorted)."""
    return {
        "fingerprint": a.fingerprint, "alertname": a.alertname, "status": a.status, "severity": a.severity,
        "cluster": a.cluster, "component": a.component, "starts_at": iso(a.starts_at), "ends_at": iso(a.ends_at),
        "received_at": iso(a.received_at), "labels": canon(a.labels), "annotations": canon(a.annotations),
        "generator_url": a.generator_url,
    }


def _action_doc(a: ActionItem, iso: Iso, today: date) -> dict[str, Any]:
    """One action item; ``overdue`` is judged on the reader's day as of the export."""
    return {
        "id": a.id, "text": a.text, "owner": a.owner, "created_by": a.created_by, "created_at": iso(a.created_at),
        "done": a.done, "done_at": iso(a.done_at), "done_by": a.done_by,
        "priority": a.priority or "p2", "due_on": a.due_on.isoformat() if a.due_on else None,
        "overdue": bool(not a.done and a.due_on and a.due_on < today),
        "tracker": a.tracker, "tracker_key": a.tracker_key, "tracker_url": a.tracker_url,
    }
