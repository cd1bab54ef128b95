"""What a drill reads of the bot's database while it watches: the incident, its stamps, the run, the evidence.

A drill only breaks things and watches; everything it scores is read back from the bot's own
tables (the same facts the post-mortem shows), each read in its own short session so the bot's
workers are never held up.  ``_wait`` polls these reads against the bot's clock, from the fault,
with the stage's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.compose.sandbox.controlplane import ControlPlaneOptions
from bot.compose.sandbox.sandbox import Sandbox
from bot.compose.sandbox.scenario import Scenario
from bot.compose.sandbox.scorecard import CheckSpan
from bot.core.store.models import Alert, Incident, PlaybookRun, RunStep, TimelineEvent
from playbooks.engine import run_lifecycle

RUN_TERMINAL = run_lifecycle.TERMINAL
EVIDENCE_AT_ONCE = frozenset({"readyz", "etcd", "apf"})  # the sections taken at T0 (Prometheus waits for its window)

class DrillFailed(Exception):
    """A stage of the drill did not happen in time (the sentence says which and what was seen)."""


class DrillReadings:
    """The reads ``Drill`` scores with; it provides the sandbox, the options and the scenario."""

    sandbox: Sandbox | None
    options: ControlPlaneOptions
    scenario: Scenario

    @property
    def _bot(self) -> Any:
        """The sandbox's bot: the drill's steps run inside ``run``, with the sandbox up."""
        assert self.sandbox is not None
        return self.sandbox.bot

    def _wait(self, probe: Callable[[], Any], fault_at: datetime, limit: float, what: str) -> Any:
        clock = self._bot.clock
        deadline = fault_at + timedelta(seconds=limit)
        while True:
            value = probe()
            if value is not None:
                return value
            if clock.now() >= deadline:
                raise DrillFailed(f"waited {limit:.0f}s from the fault for {what}; it did not happen")
            time.sleep(0.05)

    def _incident(self, fault_at: datetime) -> Incident | None:
        with self._bot.db.session() as session:
            rows = session.execute(select(Incident).where(
                col(Incident.cluster) == self.options.cluster,
                col(Incident.created_at) >= fault_at - timedelta(seconds=1),
            ).order_by(col(Incident.id))).scalars().all()
            for row in rows:
                if row.component == self.scenario.component:
                    return row
            return None

    def _stamped(self, incident_id: int, column: str) -> Incident | None:
        row = self._reload(incident_id)
        return row if row is not None and getattr(row, column) is not None else None

    def _conclusion(self, incident_id: int) -> TimelineEvent | None:
        """The first diagnosis conclusion (a cause bound to a playbook, or an escalation with evidence)."""
        with self._bot.db.session() as session:
            return session.execute(select(TimelineEvent).where(
                col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.kind) == "diagnosis.conclusion",
            ).order_by(col(TimelineEvent.id))).scalars().first()

    def _check_spans(self, incident: Incident | None) -> list[CheckSpan]:
        """The first diagnosis's checks answered by its conclusion (late answers decided nothing)."""
        if incident is None:
            return []
        with self._bot.db.session() as session:
            events = session.execute(select(TimelineEvent).where(
                col(TimelineEvent.incident_id) == incident.id,
                col(TimelineEvent.kind).in_(("diagnosis.started", "diagnosis.check", "diagnosis.conclusion")),
            ).order_by(col(TimelineEvent.at), col(TimelineEvent.id))).scalars().all()
        started = next((e for e in events if e.kind == "diagnosis.started"), None)
        concluded = next((e.at for e in events if e.kind == "diagnosis.conclusion"), None)
        if started is None or concluded is None:
            return []
        number = (started.data or {}).get("number")
        spans = []
        for event in events:
            data = event.data or {}
            if event.kind != "diagnosis.check" or data.get("late") or data.get("number") != number \
                    or not started.at <= event.at <= concluded:
                continue
            asked = datetime.fromisoformat(data["at"]) if data.get("at") else started.at
            spans.append(CheckSpan(asked=asked, answered=event.at, known=data.get("status") == "ok",
                                   slept=float(data.get("slept_seconds") or 0.0)))
        return spans

    def _reload(self, incident_id: int) -> Incident | None:
        with self._bot.db.session() as session:
            return session.get(Incident, incident_id)

    def _run(self, incident_id: int) -> PlaybookRun | None:
        with self._bot.db.session() as session:
            return session.execute(select(PlaybookRun).where(col(PlaybookRun.incident_id) == incident_id)
                                   .order_by(col(PlaybookRun.id))).scalars().first()

    def _reload_run(self, run_id: int) -> PlaybookRun | None:
        with self._bot.db.session() as session:
            return session.get(PlaybookRun, run_id)

    def _finished(self, run_id: int) -> PlaybookRun | None:
        with self._bot.db.session() as session:
            run = session.get(PlaybookRun, run_id)
            return run if run is not None and run.state in RUN_TERMINAL else None

    def _first_alert(self, incident: Incident | None) -> Alert | None:
        if incident is None:
            return None
        with self._bot.db.session() as session:
            return session.execute(select(Alert).where(col(Alert.incident_id) == incident.id)
                                   .order_by(col(Alert.received_at))).scalars().first()

    def _alerts_since(self, fault_at: datetime) -> list[dict[str, Any]]:
        """Every alert the webhook brought for the cluster after the fault, with the playbook its rule names:
        a drill's false positives (a flood alert in a drill without a flood) show here."""
        with self._bot.db.session() as session:
            rows = session.execute(select(Alert).where(
                col(Alert.cluster) == self.options.cluster, col(Alert.received_at) >= fault_at,
            ).order_by(col(Alert.received_at))).scalars().all()
            return [{"alertname": a.alertname, "playbook": (a.labels or {}).get("playbook"), "status": a.status,
                     "received_after_fault": round((a.received_at - fault_at).total_seconds(), 3)} for a in rows]

    def _step_seconds(self, run: PlaybookRun | None) -> float | None:
        if run is None:
            return None
        with self._bot.db.session() as session:
            steps = session.execute(select(RunStep).where(col(RunStep.run_id) == run.id)).scalars().all()
            return sum((s.finished_at - s.started_at).total_seconds() for s in steps
                       if s.started_at is not None and s.finished_at is not None)

    def _wait_evidence(self, incident_id: int, limit: float = 30.0) -> None:
        """Give the evidence worker (a background worker that never delays the incident) the time to
        store what it takes at T0, so that the post-mortem shows it; a gap is written as a gap."""
        bot = self._bot
        if not getattr(getattr(bot.settings, "evidence", None), "enabled", False):
            return
        from bot.core.store.models import EvidenceSection

        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with bot.db.session() as session:
                stored = set(session.execute(select(col(EvidenceSection.section)).where(
                    col(EvidenceSection.incident_id) == incident_id)).scalars())
            if EVIDENCE_AT_ONCE <= stored:
                return
            time.sleep(0.2)  # polling the database for the worker's rows, not timing anything
