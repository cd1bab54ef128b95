"""Diagnosis of incidents: choose a procedure, run it, write what it found.

``Diagnoser.diagnose`` is the one path for both the automatic run (once per
incident, after it was announced) and ``/incident diagnose``.  The
lifecycle moves from *notified* to *diagnosing* at the start (a re-run leaves
a diagnosed incident diagnosed until it concludes); each check becomes a
``diagnosis.check`` timeline event with its evidence; the conclusion becomes
``diagnosis.conclusion``.  A conclusion bound to a playbook records the root
cause (``diagnosed_at``) and hands the playbook to the *proposer* — a
callback the composition root wires to the playbook engine, because the
domain must not import ``playbooks``.  An escalation records the evidence and
pages the commander, and leaves the root cause to people.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.model import Procedure
from bot.domain.diagnosis.ports import Backends
from bot.domain.diagnosis.runner import CheckResult, Outcome, Runner
from bot.core.errors import IllegalTransition, IncidentBotError, IntegrationError
from bot.domain.incidents import fleet, lifecycle
from bot.core.store import timeline
from bot.domain.incidents.service import Incidents
from bot.core.store.refs import ref_of
from bot.domain.slo import rota
from bot.core.store import outbox
from bot.core.store.messages import Page
from bot.core.store.models import Alert, Incident, Participant, TimelineEvent
from bot.core.plugins import Extra

log = logging.getLogger(__name__)

ACTOR = SOURCE = "diagnosis"
AUTO_KEY = "diagnosis:auto"
RESUME_KEY = "diagnosis:auto:resumed"  # the one re-run of an automatic diagnosis cut short by a crash
DIAGNOSABLE = ("detected", "notified", "diagnosing", "diagnosed")


class Proposer(Protocol):
    """Plans a playbook run for approval; returns a sentence for the timeline (e.g. "RUN-3 awaits approval")."""

    def __call__(self, *, incident_id: int, playbook: str, params: dict[str, Any], requested_by: str,
                 cluster: str | None = None) -> str | None: ...


@dataclass
class Diagnosis:
    """One run: which procedure, its number on the incident, and the outcome."""

    incident_id: int
    number: int
    procedure: Procedure
    outcome: Outcome
    proposal: str | None = None
    cluster: str | None = None  # the one cluster of a fleet incident it looked at (`--cluster`), if named

    def sentence(self) -> str:
        o = self.outcome
        head = f"{ref_of(self.incident_id)} diagnosis #{self.number} ({self.procedure.name}): "
        if o.escalate:
            return head + f"escalated to people — {o.cause}"
        return head + f"{o.cause} → playbook {o.playbook}" + (f" ({self.proposal})" if self.proposal else "")


def incident_context(session: Any, row: Incident) -> dict[str, Any]:
    """What templates see as ``incident``: its fields and its alerts' names and labels."""
    alerts = list(session.execute(
        select(Alert).where(col(Alert.incident_id) == row.id).order_by(col(Alert.id))).scalars())
    firing = [a for a in alerts if a.status == "firing"] or alerts
    labels: dict[str, str] = {}
    for a in reversed(firing):  # the first alert's labels win
        labels.update({str(k): str(v) for k, v in (a.labels or {}).items()})
    return {
        "id": row.id, "ref": ref_of(row.id), "title": row.title, "severity": row.severity, "cluster": row.cluster,
        "component": row.component, "state": row.state, "started_at": row.started_at.isoformat(),
        "labels": labels, "alert_names": sorted({a.alertname for a in firing}),
        "alerts": [{"name": a.alertname, "status": a.status, "labels": dict(a.labels or {}),
                    "annotations": dict(a.annotations or {})} for a in firing],
    }


class Diagnoser:
    def __init__(self, incidents: Incidents, library: Library, backends: Backends, *,
                 proposer: Proposer | None = None, clock: Clock | None = None,
                 settings: Settings | None = None) -> None:
        self.incidents = incidents
        self.db = incidents.db
        self.settings = settings or incidents.settings
        self.clock = clock or incidents.clock
        self.library = library
        self.backends = backends
        self.proposer = proposer
        # a cluster that did not answer the plan's reads (an overloaded apiserver, a load balancer
        # closing a connection) is asked again after these pauses before a person is told
        self.propose_retry_seconds: tuple[float, ...] = (1.0, 2.0, 4.0)
        self.sleep: Callable[[float], None] = time.sleep  # between repeated answers of a check (tests: no-op)

    # -- choosing
    def choose(self, context: dict[str, Any], sop: str | None = None) -> Procedure | None:
        if sop:
            return self.library.get(sop)
        labels = [a["labels"] for a in context["alerts"]]
        return self.library.choose(set(context["alert_names"]), labels, context["component"])

    def pending(self, limit: int = 20) -> list[int]:
        """Announced incidents never diagnosed automatically, in clusters diagnosis can look at."""
        claimed = exists().where(col(TimelineEvent.incident_id) == col(Incident.id),
                                 col(TimelineEvent.dedupe_key) == AUTO_KEY)
        with self.db.reading() as session:  # every tick: a read, never SQLite's write lock
            rows = session.execute(
                select(col(Incident.id), col(Incident.cluster))
                .where(col(Incident.state) == "notified", ~claimed).order_by(col(Incident.id))
            ).all()
        return [incident_id for incident_id, cluster in rows if self.backends(cluster).configured][:limit]

    @property
    def stale_after_seconds(self) -> float:
        """An automatic run with no conclusion after this long was cut short (the process died)."""
        longest = max((len(p.checks) for p in self.library.procedures.values()), default=1)
        return 2 * self.settings.diagnosis.check_timeout_seconds * longest + 30

    def interrupted(self, limit: int = 20) -> list[int]:
        """Incidents still *diagnosing* whose automatic run started long ago and never concluded."""
        cutoff = self.clock.now() - timedelta(seconds=self.stale_after_seconds)
        other = aliased(TimelineEvent)
        concluded = exists().where(col(other.incident_id) == col(Incident.id),
                                   col(other.kind) == "diagnosis.conclusion")
        other2 = aliased(TimelineEvent)
        resumed = exists().where(col(other2.incident_id) == col(Incident.id), col(other2.dedupe_key) == RESUME_KEY)
        with self.db.reading() as session:
            return list(session.execute(
                select(col(Incident.id)).join(TimelineEvent, col(TimelineEvent.incident_id) == col(Incident.id))
                .where(col(Incident.state) == "diagnosing", col(TimelineEvent.dedupe_key) == AUTO_KEY,
                       col(TimelineEvent.kind) == "diagnosis.started", col(TimelineEvent.at) <= cutoff,
                       ~concluded, ~resumed)
                .order_by(col(Incident.id)).limit(limit)
            ).scalars())

    # -- running
    def diagnose(self, ref: str | int, *, actor: str, source: str, sop: str | None = None,
                 auto: bool = False, resume: bool = False, cluster: str | None = None) -> Diagnosis | None:
        """Run the fitting procedure (or ``sop``) on the incident's cluster (or ``cluster``, one of a fleet
        incident's); None when auto and already claimed or nothing fits."""
        started = self._start(ref, actor=actor, source=source, sop=sop, auto=auto or resume,
                              claim=RESUME_KEY if resume else AUTO_KEY)
        if started is None:
            return None
        incident_id, number, procedure, context, own_cluster = started
        if cluster and cluster != own_cluster:  # one cluster of a fleet incident: its own endpoints and name
            context = {**context, "cluster": cluster}
        targeted = cluster  # named with --cluster: only that cluster is diagnosed by what is found
        cluster = cluster or own_cluster
        context.update(self._before_t0(incident_id, cluster, context))
        access = self.backends(cluster)
        runner = Runner(access, self.clock, check_timeout=self.settings.diagnosis.check_timeout_seconds,
                        sleep=self.sleep)
        outcome = runner.run(procedure, context, on_check=lambda r: self._record_check(incident_id, number, r))
        diagnosis = Diagnosis(incident_id, number, procedure, outcome, cluster=targeted)
        self._conclude(diagnosis, actor=actor)
        return diagnosis

    def _before_t0(self, incident_id: int, cluster: str, context: dict[str, Any]) -> dict[str, Any]:
        """``incident.changes`` (what changed before T0, nearest first) and ``incident.evidence`` (frozen at T0)."""
        from bot.domain.diagnosis import changes, t0_evidence

        if not context.get("started_at"):
            return {"changes": [], "evidence": {}}
        t0 = datetime.fromisoformat(context["started_at"])
        return {"changes": changes.before_t0(self.db, cluster, t0,
                                             window_seconds=self.settings.evidence.changes_window_seconds,
                                             component=context.get("component")),
                "evidence": t0_evidence.for_procedures(self.db, incident_id)}

    def _start(self, ref: str | int, *, actor: str, source: str, sop: str | None,
               auto: bool, claim: str = AUTO_KEY) -> tuple[int, int, Procedure, dict[str, Any], str] | None:
        with self.incidents.transaction(ref) as (session, row):
            assert row.id is not None
            if row.state not in DIAGNOSABLE:
                raise IllegalTransition(lifecycle.illegal_message(row, "start_diagnosis"))
            if auto and timeline.exists(session, row.id, claim):
                return None
            context = incident_context(session, row)
            procedure = self.choose(context, sop)
            now = self.clock.now()
            if procedure is None:
                if auto:
                    timeline.record(session, row.id, "diagnosis.skipped", "no diagnosis procedure fits this incident",
                                    at=now, actor=ACTOR, source=SOURCE, dedupe_key=claim, post=False)
                    return None
                raise IllegalTransition(f"no diagnosis procedure fits {ref_of(row.id)}; name one with `--sop NAME` "
                                        f"({', '.join(sorted(self.library.procedures)) or 'none is loaded'}).")
            number = len(timeline.events(session, row.id, kinds=["diagnosis.started"])) + 1
            text = f"diagnosis #{number} started: procedure {procedure.name} ({procedure.title})"
            event = timeline.record(session, row.id, "diagnosis.started", text, at=now, actor=ACTOR if auto else actor,
                                    source=SOURCE if auto else source,
                                    data={"procedure": procedure.name, "number": number, "auto": auto,
                                          "checks": [c.id for c in procedure.checks], "requested_by": actor},
                                    dedupe_key=claim if auto else f"diagnosis:{number}:started", post=False)
            if event is None:
                return None
            if claim == RESUME_KEY:
                timeline.record(session, row.id, "note", f"automatic diagnosis #{number - 1} never concluded "
                                "(the bot stopped meanwhile); running it again", at=now, actor=ACTOR, source=SOURCE,
                                post=False)
            if row.state == "notified":  # a re-run of a diagnosed incident does not move it back
                self.incidents.move(session, row, "start_diagnosis", actor=ACTOR if auto else actor,
                                    source=SOURCE if auto else source, note=f"procedure {procedure.name}")
            return row.id, number, procedure, context, row.cluster

    def _record_check(self, incident_id: int, number: int, result: CheckResult) -> None:
        with self.db.session() as session:
            timeline.record(session, incident_id, "diagnosis.check", result.sentence(),
                            at=result.answered_at or result.at, actor=ACTOR,
                            source=SOURCE, data={"number": number, **result.data()},
                            dedupe_key=f"diagnosis:{number}:check:{result.id}", post=False)

    def _conclude(self, diagnosis: Diagnosis, *, actor: str) -> None:
        o, incident_id, number = diagnosis.outcome, diagnosis.incident_id, diagnosis.number
        now = self.clock.now()
        word = "escalate" if o.escalate else f"playbook {o.playbook}"
        text = f"diagnosis #{number} concluded {o.conclusion.id}: {o.cause} ({word})"
        with self.incidents.transaction(incident_id) as (session, row):
            timeline.record(session, incident_id, "diagnosis.conclusion", text, at=now, actor=ACTOR, source=SOURCE,
                            data={"number": number, **o.data()}, dedupe_key=f"diagnosis:{number}:conclusion")
            if o.escalate:
                self._escalate(session, row, diagnosis, now)
                return
            keep_human_cause = actor == ACTOR and row.root_cause is not None  # set by a person meanwhile
            fleet_cluster = (diagnosis.cluster if diagnosis.cluster is not None
                             and len(fleet.clusters(session, incident_id)) > 1 else None)
            for_cluster = fleet_cluster is not None
            if fleet_cluster is not None:  # one cluster of a fleet looked at: it is diagnosed; the incident once all are
                fleet.reach(session, self.incidents, row, fleet_cluster, "diagnosed", actor=ACTOR,
                            source=SOURCE, text=o.cause, data={"procedure": diagnosis.procedure.name,
                                                               "number": number})
        if for_cluster:
            pass  # recorded for that cluster above, not as the whole incident's cause
        elif keep_human_cause:
            log.info("%s already has a root cause; the automatic diagnosis does not overwrite it", ref_of(incident_id))
        else:
            try:
                self.incidents.cause(incident_id, o.cause, actor=ACTOR, source=SOURCE,
                                     data={"procedure": diagnosis.procedure.name, "conclusion": o.conclusion.id,
                                           "number": number, "playbook": o.playbook, "params": o.params})
            except IncidentBotError as exc:  # e.g. the incident moved on meanwhile
                log.info("diagnosis of %s could not record the cause: %s", ref_of(incident_id), exc)
        diagnosis.proposal = self._propose(diagnosis)

    def _propose(self, diagnosis: Diagnosis) -> str:
        o = diagnosis.outcome
        assert o.playbook is not None
        args = " ".join(f"{k}={v}" for k, v in o.params.items())
        by_hand = f"run it by hand: `/incident run {o.playbook}{(' ' + args) if args else ''}`"
        if self.proposer is None:
            sentence = f"proposed playbook {o.playbook}" + (f" with {args}" if args else "") + f"; {by_hand}"
        else:
            try:
                answer = self._propose_with_retries(diagnosis)
                sentence = answer or f"proposed playbook {o.playbook}" + (f" with {args}" if args else "")
            except IncidentBotError as exc:
                sentence = f"could not propose playbook {o.playbook}: {exc.message.rstrip('.')}; {by_hand}"
            except Exception as exc:  # the engine failing must not lose the diagnosis
                log.exception("proposing %s for %s failed", o.playbook, ref_of(diagnosis.incident_id))
                sentence = f"could not propose playbook {o.playbook} ({type(exc).__name__}); {by_hand}"
        with self.db.session() as session:
            timeline.record(session, diagnosis.incident_id, "diagnosis.proposal", sentence, at=self.clock.now(),
                            actor=ACTOR, source=SOURCE,
                            data={"number": diagnosis.number, "playbook": o.playbook, "params": o.params},
                            dedupe_key=f"diagnosis:{diagnosis.number}:proposal")
        return sentence

    def _propose_with_retries(self, diagnosis: Diagnosis) -> str | None:
        """Ask the engine to plan and propose; a transient failure to reach the cluster is retried."""
        assert self.proposer is not None
        o = diagnosis.outcome
        assert o.playbook is not None, "only a conclusion bound to a playbook is proposed"
        for pause in (*self.propose_retry_seconds, None):
            try:
                return self.proposer(incident_id=diagnosis.incident_id, playbook=o.playbook, params=dict(o.params),
                                     requested_by=ACTOR, cluster=diagnosis.cluster)
            except IntegrationError as exc:
                if pause is None:
                    raise
                log.info("planning %s for %s failed (%s); asking again in %gs", o.playbook,
                         ref_of(diagnosis.incident_id), exc.message, pause)
                time.sleep(pause)
        return None  # not reached: the last attempt returns or raises

    def _escalate(self, session: Any, row: Incident, diagnosis: Diagnosis, now: Any) -> None:
        o = diagnosis.outcome
        commander = session.execute(
            select(col(Participant.user))
            .where(col(Participant.incident_id) == row.id, col(Participant.role) == "commander",
                   col(Participant.active))
        ).scalars().first()
        target = commander or rota.primary(self.settings.oncall, now, cluster=row.cluster, component=row.component)
        unknown = [c.id for c in o.unknown_checks]
        evidence = {c.id: (c.summary if c.known else f"unknown: {c.error}") for c in o.checks}
        text = (f"diagnosis #{diagnosis.number} needs a person: {o.cause}"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                + (f"; paging @{target}" if target else "; nobody to page (no commander, empty rota)"))
        timeline.record(session, row.id, "diagnosis.escalated", text, at=now, actor=ACTOR, source=SOURCE,
                        data={"number": diagnosis.number, "cause": o.cause, "evidence": evidence,
                              "problem": o.problem, "paged": target},
                        dedupe_key=f"diagnosis:{diagnosis.number}:escalated", post=False)
        if target:
            page = Page(user=target, reason=f"{ref_of(row.id)} {row.title}: diagnosis needs you — {o.cause}")
            outbox.enqueue(session, page, incident_id=row.id, now=now,
                           dedupe_key=f"page:{row.id}:diagnosis:{diagnosis.number}")


class DiagnosisWorker:
    """Diagnoses every announced incident once (the dedupe key makes replicas agree)."""

    name = "diagnosis"

    def __init__(self, diagnoser: Diagnoser, *, interval: float = 2.0) -> None:
        self.diagnoser = diagnoser
        self.interval = interval
        self.wake = threading.Event()  # set when an incident is announced: no waiting for the next interval
        diagnoser.incidents.on_notified.append(lambda incident_id: self.wake.set())

    def tick(self) -> int:
        if not self.diagnoser.settings.diagnosis.auto:
            return 0
        done = 0
        work = [(i, False) for i in self.diagnoser.pending()] + [(i, True) for i in self.diagnoser.interrupted()]
        for incident_id, resume in work:
            try:
                if self.diagnoser.diagnose(incident_id, actor=ACTOR, source=SOURCE, auto=not resume,
                                           resume=resume) is not None:
                    done += 1
            except IncidentBotError as exc:
                log.info("automatic diagnosis of %s skipped: %s", ref_of(incident_id), exc)
        return done


DIAGNOSER: Extra[Diagnoser] = Extra("diagnoser", "bot.compose.app.diagnosis")
