"""Black-box probe outcomes -> stored results, confirmed failures -> incidents.

One failed probe is a suspicion, not an incident: a GC pause or one lost
packet fails a check now and then.  A target becomes an incident finding
only when the re-probe fails too (``probes.confirm_failures``, default 2
consecutive failures).  Its T0 is the *first* failed probe
(``ProbeResult.failing_since``), not the confirmation, because that is when
the fault was first seen.

Confirmed failures of one cluster and component join the open incident of
that group (the same key Alertmanager alerts use, so a dead etcd member seen
by both channels is one incident) or open one with the evidence: target,
answer, latency, failure count.  A target that answers again is a
"probe.recovered" timeline event on its incident; like a resolved alert it
is evidence for the commander, not an automatic resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.clock import Clock, utc
from bot.core.config import Settings
from bot.core.store import timeline
from bot.domain.incidents.alert_rules import group_key
from bot.domain.incidents.grouping import candidate_keys, choose, downstream_keys, load_open
from bot.domain.incidents.service import Incidents
from bot.core.store.db import Database
from bot.core.store.models import Incident, ProbeResult, ProbeTally
from bot.core.store.raw import RawSql
from integrations.clients.probes import Check, ProbeOutcome, run_checks

SOURCE = "prober"


@dataclass
class ProbeTickResult:
    outcomes: list[ProbeOutcome] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    joined: list[int] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


class ProbeRecorder:
    """Stores outcomes and turns confirmed failures into incident evidence (one transaction per tick)."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, incidents: Incidents) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.incidents = incidents

    def record(self, outcomes: Sequence[ProbeOutcome], *, at: datetime | None = None) -> ProbeTickResult:
        """``at`` is when the probes ran (their T0 if they fail); defaults to now."""
        result = ProbeTickResult(outcomes=list(outcomes))
        if not outcomes:
            return result
        confirm = self.settings.probes.confirm_failures
        with self.db.session() as session:
            now = self.clock.now()
            probed_at = at or now
            existing = {(r.cluster, r.target): r for r in session.execute(
                select(ProbeResult).where(col(ProbeResult.cluster).in_(sorted({o.cluster for o in outcomes})))
            ).scalars()}
            confirmed: dict[str, list[tuple[ProbeOutcome, ProbeResult]]] = {}
            recovered: dict[int, list[tuple[ProbeOutcome, ProbeResult]]] = {}
            for outcome in outcomes:
                row = existing.get((outcome.cluster, outcome.target))
                if row is None:
                    row = ProbeResult(cluster=outcome.cluster, target=outcome.target, consecutive_failures=0)
                if outcome.ok:
                    if row.incident_id is not None:
                        recovered.setdefault(row.incident_id, []).append((outcome, row))
                    elif row.consecutive_failures:
                        result.recovered.append(outcome.target)  # a blip, never confirmed
                    row.consecutive_failures = 0
                    row.failing_since = None
                else:
                    row.consecutive_failures += 1
                    row.failing_since = row.failing_since or probed_at
                    if row.consecutive_failures >= confirm and row.incident_id is None:
                        confirmed.setdefault(group_key(outcome.cluster, outcome.component), []).append((outcome, row))
                row.ok = outcome.ok
                slow = is_slow(outcome, self.settings.probes.slow_seconds)
                row.runs_total = (row.runs_total or 0) + 1
                row.failures_total = (row.failures_total or 0) + (0 if outcome.ok else 1)
                row.slow_total = (row.slow_total or 0) + (1 if slow else 0)
                tally(session, outcome, probed_at, slow)
                row.latency_ms = outcome.latency_ms
                row.detail = outcome.detail
                row.checked_at = probed_at
                session.add(row)
            session.flush()
            for key, failures in confirmed.items():
                self._confirmed(session, key, failures, now, result)
            for incident_id, items in recovered.items():
                self._recovered(session, incident_id, items, now, result)
        return result

    def _confirmed(self, session: Session, key: str, failures: list[tuple[ProbeOutcome, ProbeResult]],
                   now: datetime, result: ProbeTickResult) -> None:
        # a confirmed failure has its start (set on the first failed probe); now stands in for a lost one
        t0 = min(utc(row.failing_since or now) for _, row in failures)
        evidence = [{"target": o.target, "detail": o.detail, "latency_ms": o.latency_ms,
                     "consecutive_failures": row.consecutive_failures,
                     "failing_since": utc(row.failing_since or now).isoformat()}
                    for o, row in failures]
        window = timedelta(seconds=self.settings.alerting.group_window_seconds)
        first = failures[0][0]
        keys = candidate_keys(first.cluster, first.component, self.settings.alerting)
        session.flush()  # an incident opened for another key of this tick is seen by the hand-written read
        found = choose(load_open(RawSql.of(session), set(keys)), keys, t0, window,
                       downstream_keys(first.cluster, first.component, self.settings.alerting))
        if found is None:
            names = ", ".join(o.target for o, _ in failures[:3]) + (f" +{len(failures) - 3} more" if len(failures) > 3 else "")
            incident = self.incidents.declare(
                f"{first.component}: black-box probe failing — {names}", actor=SOURCE, source=SOURCE,
                severity="sev1", cluster=first.cluster, component=first.component, started_at=t0,
                group_key=key, evidence={"probes": evidence}, extra={"detected_by": SOURCE}, session=session)
            incident_id = incident.id
            result.opened.append(incident_id)
        else:
            joined = session.get(Incident, found.id)
            assert joined is not None  # read in this transaction a moment ago
            incident = joined
            incident_id = incident.id
            if t0 < utc(incident.started_at):
                incident.started_at = t0
                incident.slo_due_at = now  # its budgets' instants moved: the watcher looks again
            incident.updated_at = now
            session.add(incident)
            result.joined.append(incident_id)
        for outcome, row in failures:
            row.incident_id = incident_id
            session.add(row)
        text = "; ".join(f"{o.target}: {o.detail}" for o, _ in failures[:5])
        timeline.record(session, incident_id, "probe.failed",
                        f"black-box probe failed {failures[0][1].consecutive_failures}× in a row — {text}",
                        at=now, actor=SOURCE, source=SOURCE, data={"probes": evidence}, post=found is not None)

    def _recovered(self, session: Session, incident_id: int, items: list[tuple[ProbeOutcome, ProbeResult]],
                   now: datetime, result: ProbeTickResult) -> None:
        text = "; ".join(f"{o.target} answers again ({o.detail}, {o.latency_ms:.0f} ms)" for o, _ in items[:5])
        timeline.record(session, incident_id, "probe.recovered", f"black-box probe recovered — {text}",
                        at=now, actor=SOURCE, source=SOURCE,
                        data={"probes": [{"target": o.target, "detail": o.detail, "latency_ms": o.latency_ms}
                                         for o, _ in items]})
        for outcome, row in items:
            row.incident_id = None
            session.add(row)
            result.recovered.append(outcome.target)


def is_slow(outcome: ProbeOutcome, slow_seconds: dict[str, float]) -> bool:
    """Answered correctly but slower than the latency objective of its kind (the target's first word)."""
    limit = slow_seconds.get(outcome.target.split(" ", 1)[0])
    return outcome.ok and limit is not None and outcome.latency_ms > limit * 1000


def tally(session: Session, outcome: ProbeOutcome, at: datetime, slow: bool) -> None:
    """Count the outcome in its target's hourly tally (the error budgets' windows)."""
    hour = utc(at).replace(minute=0, second=0, microsecond=0)
    row = session.execute(select(ProbeTally).where(
        col(ProbeTally.cluster) == outcome.cluster, col(ProbeTally.target) == outcome.target,
        col(ProbeTally.hour) == hour)).scalars().first()
    if row is None:
        row = ProbeTally(cluster=outcome.cluster, target=outcome.target, hour=hour)
    row.runs = (row.runs or 0) + 1
    row.failures = (row.failures or 0) + (0 if outcome.ok else 1)
    row.slow = (row.slow or 0) + (1 if slow else 0)
    row.latency_ms_sum = (row.latency_ms_sum or 0.0) + outcome.latency_ms
    session.add(row)


class ProbeWorker:
    """The prober inside the service: every ``probes.interval_seconds``, probe and record."""

    name = "prober"

    def __init__(self, recorder: ProbeRecorder, checks: Callable[[], Sequence[Check]], *,
                 interval: float, timeout: float, on_change: Callable[[], None] | None = None,
                 name: str = "prober") -> None:
        self.name = name
        self.recorder = recorder
        self.on_change = on_change
        self.checks = checks
        self.interval = interval
        self.timeout = timeout
        self.last: ProbeTickResult | None = None

    def tick(self) -> ProbeTickResult:
        started = self.recorder.clock.now()
        outcomes = run_checks(list(self.checks()), timeout=self.timeout)
        self.last = self.recorder.record(outcomes, at=started)
        if self.on_change is not None and (self.last.opened or self.last.joined or self.last.recovered):
            self.on_change()  # e.g. wake the chat sender: an announcement should not wait a polling tick
        return self.last


def probe_rows(db: Database) -> list[ProbeResult]:
    """The last outcome of every target, for /metrics."""
    with db.session() as session:
        return list(session.execute(
            select(ProbeResult).order_by(col(ProbeResult.cluster), col(ProbeResult.target))).scalars())

