"""``incident-bot drill SCENARIO``: inject a fault into a sandbox and score the 1-5-10 end to end.

inject -> check -> recover, all automatic (seed-notes: fault drills).  The
drill only breaks things and watches: detection (Alertmanager webhook,
prober), diagnosis (SOPs), the proposal, the approval (the engine approves
drill runs by itself and records it so), the playbook and its verification
are the bot's own real pipeline.  The drill then checks the outcome through
the real components, writes the scorecard and the post-mortem, and throws the
sandbox away.

While it runs the drill holds the lease ``drill:<cluster>``: incidents opened
on that cluster meanwhile are marked ``is_drill`` (``Incidents.declare``).
A drill refuses a cluster not marked ``drill_target: true``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select

from bot.config import Settings
from bot.errors import BadInput, ConfigError
from bot.store import timeline
from bot.incidents.service import DRILL_LEASE_PREFIX
from bot.store.refs import ref_of
from bot.sandbox.controlplane import ControlPlaneOptions
from bot.sandbox.sandbox import Sandbox
from bot.sandbox.scenario import Scenario, VerificationFailed
from bot.sandbox.scenarios import scenario
from bot.sandbox.scorecard import Scorecard, build_stages
from bot.store.models import Alert, Incident, Lease, PlaybookRun, RunStep, Snapshot, TimelineEvent
from playbooks.engine import run_lifecycle

RUN_TERMINAL = run_lifecycle.TERMINAL


class DrillFailed(Exception):
    """A stage of the drill did not happen in time (the sentence says which and what was seen)."""


@dataclass
class Deadlines:
    """How long the drill waits for each stage, in seconds from the fault (the 1-5-10 by default)."""

    notify: float = 60.0
    diagnose: float = 300.0
    mitigate: float = 600.0
    snapshot: float = 60.0


@dataclass
class DrillResult:
    scorecard: Scorecard
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    sandbox_root: Path | None = None

    @property
    def passed(self) -> bool:
        return self.scorecard.passed


def check_drill_target(settings: Settings, cluster: str) -> None:
    """Refuse, with the reason, a cluster a drill must not touch."""
    endpoints = settings.clusters.get(cluster)
    if endpoints is None:
        raise ConfigError(f"drills: cluster `{cluster}` is not configured (clusters.{cluster}); "
                          f"a drill only runs on a cluster marked drill_target: true.")
    if not endpoints.drill_target:
        raise ConfigError(f"drills: cluster `{cluster}` is not a drill target; a drill never touches it. "
                          f"Set clusters.{cluster}.drill_target: true only on a cluster built for drills.")


def default_out_dir(name: str, now: datetime | None = None) -> Path:
    now = now or datetime.now(timezone.utc)
    return Path("drills") / f"{now.strftime('%Y%m%dT%H%M%SZ')}-{name}"


class Drill:
    def __init__(self, name: str, *, out_dir: Path | None = None, deadlines: Deadlines | None = None,
                 echo: Callable[[str], None] = print, options: ControlPlaneOptions | None = None) -> None:
        self.scenario: Scenario = scenario(name)
        self.out_dir = Path(out_dir) if out_dir else default_out_dir(name)
        self.deadlines = deadlines or Deadlines()
        self.echo = echo
        self.options = options or ControlPlaneOptions()
        if self.scenario.needs:  # the sandbox parts this scenario cannot run without
            self.options = dataclasses.replace(self.options, **{flag: True for flag in self.scenario.needs})
        self.sandbox: Sandbox | None = None
        self._chat: TextIO | None = None

    # -- the whole drill ----------------------------------------------------------
    def run(self, *, keep: Callable[[Sandbox], None] | None = None) -> DrillResult:
        """Run the drill; ``keep`` (if given) is called with the live sandbox before it is thrown away."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._chat = open(self.out_dir / "chat.txt", "w", encoding="utf-8")
        try:
            from bot.chat.console import ConsoleDeliverer

            self.echo(f"drill {self.scenario.name}: starting the sandbox (etcd x{self.options.etcd_members}, "
                      f"apiservers, HAProxy, Prometheus, Alertmanager, the bot)")
            self.sandbox = Sandbox(options=self.options,
                                   deliverer_factory=lambda bot: ConsoleDeliverer(bot.dispatcher, self._chat))
            began = time.monotonic()
            self.sandbox.start()
            self.echo(f"drill {self.scenario.name}: sandbox ready in {time.monotonic() - began:.1f}s "
                      f"(kube-apiservers ready in {_slowest_apiserver(self.sandbox):.1f}s)")
            root = self.sandbox.root
            check_drill_target(self.sandbox.settings, self.options.cluster)  # type: ignore[arg-type]
            try:
                result = self._rehearse()
                result.sandbox_root = root
                if keep is not None:
                    keep(self.sandbox)
                return result
            finally:
                self.sandbox.close()
        finally:
            self._chat.close()

    def _rehearse(self) -> DrillResult:
        sandbox = self.sandbox
        assert sandbox is not None and sandbox.plane is not None
        bot, plane, scen = sandbox.bot, sandbox.plane, self.scenario
        if scen.needs_snapshot:
            self._wait_snapshot()
        card = Scorecard(scen.name, scen.expectation, None, bot.clock.now(), components=plane.components())
        facts = scen.prepare(plane)
        self._hold_lease()
        fault_at = card.fault_at = bot.clock.now()
        facts.update(scen.inject(plane))
        self.echo(f"drill {scen.name}: fault injected: {scen.summary} ({_facts(facts)})")
        incident: Incident | None = None
        run: PlaybookRun | None = None
        diagnosed_at: datetime | None = None
        try:
            incident = self._wait(lambda: self._incident(fault_at), fault_at, self.deadlines.notify,
                                  "an incident about the fault to be opened")
            card.incident = ref_of(incident.id)
            self._record(incident.id, "drill.fault", f"drill {scen.name}: fault injected: {scen.summary}",
                         at=fault_at, data={"scenario": scen.name, **_public(facts)})
            self.echo(f"drill {scen.name}: {card.incident} opened by {incident.source}: {incident.title}")
            incident = self._wait(lambda: self._stamped(incident.id, "notified_at"), fault_at,
                                  self.deadlines.notify, f"{card.incident} to be notified")
            conclusion = self._wait(lambda: self._conclusion(incident.id), fault_at, self.deadlines.diagnose,
                                    f"{card.incident} to be diagnosed")
            diagnosed_at = conclusion.at
            bound = (conclusion.data or {}).get("playbook")
            self.echo(f"drill {scen.name}: diagnosed ({'escalate' if not bound else bound}): "
                      f"{(conclusion.data or {}).get('cause') or conclusion.text}")
            if bound != scen.playbook:
                raise DrillFailed(f"the diagnosis concluded {bound or 'escalate'}; the scenario expects "
                                  f"{scen.playbook or 'escalate'} ({conclusion.text})")
            if scen.playbook:
                run = self._wait(lambda: self._run(incident.id), fault_at, self.deadlines.diagnose,
                                 f"a playbook run to be proposed for {card.incident}")
                if run.playbook != scen.playbook:
                    raise DrillFailed(f"the diagnosis bound {run.playbook}; the scenario expects {scen.playbook}")
                self.echo(f"drill {scen.name}: RUN-{run.id} {run.playbook} proposed"
                          + (" (auto-approved: drill)" if run.auto_approved else ""))
                run = self._wait(lambda: self._finished(run.id), fault_at, self.deadlines.mitigate,
                                 f"RUN-{run.id} {run.playbook} to finish")
                if run.state != "succeeded":
                    raise DrillFailed(f"RUN-{run.id} {run.playbook} ended {run.state}: {run.error or 'no reason given'}")
                incident = self._wait(lambda: self._stamped(incident.id, "mitigated_at"), fault_at,
                                      self.deadlines.mitigate, f"{card.incident} to be marked mitigated")
                card.outcome = (f"diagnosis bound {run.playbook}; RUN-{run.id} "
                                f"{'auto-approved' if run.auto_approved else 'approved'} and succeeded")
            else:
                time.sleep(1.0)  # a proposal would follow the diagnosis within the worker's tick
                proposed = self._run(incident.id)
                if proposed is not None:
                    raise DrillFailed(f"the diagnosis proposed {proposed.playbook}; the scenario expects escalation")
                card.outcome = "diagnosis escalated to the commander with its evidence (no playbook proposed)"
            card.verification = scen.verify(plane, facts)
            self._record(incident.id, "drill.verified", f"drill {scen.name}: verified: {card.verification}",
                         data={"scenario": scen.name})
            if scen.repair is not None:
                repaired = scen.repair(plane, facts)
                self._record(incident.id, "drill.repaired", f"drill {scen.name}: {repaired}")
                card.verification += f"; {repaired}"
        except (DrillFailed, VerificationFailed) as exc:
            card.failures.append(str(exc))
        finally:
            self._release_lease()
            if scen.finish is not None:
                scen.finish(plane, facts)
            card.measurements = dict(facts.get("measurements") or {})
        incident = self._reload(incident.id) if incident is not None else None
        card.is_drill = incident.is_drill if incident is not None else None
        if run is not None:
            run = self._reload_run(run.id)
            card.auto_approved = run.auto_approved if run is not None else None
        card.stages = build_stages(fault_at=fault_at, incident=incident, budgets=bot.settings.budgets,
                                   diagnosed_at=diagnosed_at, check_seconds=self._check_seconds(incident),
                                   first_alert=self._first_alert(incident), step_seconds=self._step_seconds(run),
                                   mitigation_expected=scen.playbook is not None)
        result = DrillResult(card, self.out_dir)
        self._write(result, incident)
        self.echo(card.render())
        return result

    # -- waiting on the database ----------------------------------------------------
    def _wait(self, probe: Callable[[], Any], fault_at: datetime, limit: float, what: str) -> Any:
        clock = self.sandbox.bot.clock  # type: ignore[union-attr]
        deadline = fault_at + timedelta(seconds=limit)
        while True:
            value = probe()
            if value is not None:
                return value
            if clock.now() >= deadline:
                raise DrillFailed(f"waited {limit:.0f}s from the fault for {what}; it did not happen")
            time.sleep(0.05)

    def _incident(self, fault_at: datetime) -> Incident | None:
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            rows = session.execute(select(Incident).where(
                Incident.cluster == self.options.cluster, Incident.created_at >= fault_at - timedelta(seconds=1),
            ).order_by(Incident.id)).scalars().all()
            for row in rows:
                if row.component == self.scenario.component:
                    return row
            return None

    def _stamped(self, incident_id: int, column: str) -> Incident | None:
        row = self._reload(incident_id)
        return row if row is not None and getattr(row, column) is not None else None

    def _conclusion(self, incident_id: int) -> TimelineEvent | None:
        """The first diagnosis conclusion (a cause bound to a playbook, or an escalation with evidence)."""
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            return session.execute(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident_id, TimelineEvent.kind == "diagnosis.conclusion",
            ).order_by(TimelineEvent.id)).scalars().first()

    def _check_seconds(self, incident: Incident | None) -> float | None:
        """From the first diagnosis's start to its last check: the time the components took to answer."""
        if incident is None:
            return None
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            events = session.execute(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id,
                TimelineEvent.kind.in_(("diagnosis.started", "diagnosis.check", "diagnosis.conclusion")),  # type: ignore[attr-defined]
            ).order_by(TimelineEvent.at, TimelineEvent.id)).scalars().all()
        started = next((e.at for e in events if e.kind == "diagnosis.started"), None)
        concluded = next((e.at for e in events if e.kind == "diagnosis.conclusion"), None)
        checks = [e.at for e in events if e.kind == "diagnosis.check" and started and concluded
                  and started <= e.at <= concluded]
        if started is None or not checks:
            return None
        return (max(checks) - started).total_seconds()

    def _reload(self, incident_id: int) -> Incident | None:
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            return session.get(Incident, incident_id)

    def _run(self, incident_id: int) -> PlaybookRun | None:
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            return session.execute(select(PlaybookRun).where(PlaybookRun.incident_id == incident_id)
                                   .order_by(PlaybookRun.id)).scalars().first()

    def _reload_run(self, run_id: int) -> PlaybookRun | None:
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            return session.get(PlaybookRun, run_id)

    def _finished(self, run_id: int) -> PlaybookRun | None:
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            run = session.get(PlaybookRun, run_id)
            return run if run is not None and run.state in RUN_TERMINAL else None

    def _wait_snapshot(self) -> None:
        bot = self.sandbox.bot  # type: ignore[union-attr]

        def newest() -> Snapshot | None:
            with bot.db.session() as session:
                return session.execute(select(Snapshot).where(Snapshot.cluster == self.options.cluster)
                                       .order_by(Snapshot.id.desc())).scalars().first()  # type: ignore[union-attr]
        start = bot.clock.now()
        snap = self._wait(newest, start, self.deadlines.snapshot, "the first etcd snapshot in the backup catalogue")
        self.echo(f"drill {self.scenario.name}: etcd snapshot in the catalogue (revision {snap.revision}, "
                  f"{snap.size_bytes} bytes)")

    def _first_alert(self, incident: Incident | None) -> Alert | None:
        if incident is None:
            return None
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            return session.execute(select(Alert).where(Alert.incident_id == incident.id)
                                   .order_by(Alert.received_at)).scalars().first()

    def _step_seconds(self, run: PlaybookRun | None) -> float | None:
        if run is None:
            return None
        with self.sandbox.bot.db.session() as session:  # type: ignore[union-attr]
            steps = session.execute(select(RunStep).where(RunStep.run_id == run.id)).scalars().all()
            return sum((s.finished_at - s.started_at).total_seconds() for s in steps
                       if s.started_at is not None and s.finished_at is not None)

    # -- writing ----------------------------------------------------------------------
    def _record(self, incident_id: int, kind: str, text: str, *, at: datetime | None = None,
                data: dict[str, Any] | None = None) -> None:
        bot = self.sandbox.bot  # type: ignore[union-attr]
        with bot.db.session() as session:
            timeline.record(session, incident_id, kind, text, at=at or bot.clock.now(), actor="drill",
                            source="drill", data=data or {}, dedupe_key=kind)

    def _hold_lease(self) -> None:
        bot = self.sandbox.bot  # type: ignore[union-attr]
        now = bot.clock.now()
        total = self.deadlines.notify + self.deadlines.diagnose + self.deadlines.mitigate
        name = DRILL_LEASE_PREFIX + self.options.cluster
        with bot.db.session() as session:
            lease = session.get(Lease, name) or Lease(name=name, holder="")
            lease.holder, lease.acquired_at = f"drill {self.scenario.name}", now
            lease.expires_at = now + timedelta(seconds=total + 60)
            session.add(lease)

    def _release_lease(self) -> None:
        bot = self.sandbox.bot  # type: ignore[union-attr]
        with bot.db.session() as session:
            lease = session.get(Lease, DRILL_LEASE_PREFIX + self.options.cluster)
            if lease is not None:
                session.delete(lease)

    def _wait_evidence(self, incident_id: int, limit: float = 30.0) -> None:
        """Give the evidence worker (a background worker that never delays the incident) the time to
        store what it takes at T0, so that the post-mortem shows it; a gap is written as a gap."""
        bot = self.sandbox.bot  # type: ignore[union-attr]
        if not getattr(getattr(bot.settings, "evidence", None), "enabled", False):
            return
        from bot.store.models import EvidenceSection

        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with bot.db.session() as session:
                stored = set(session.execute(select(EvidenceSection.section).where(
                    EvidenceSection.incident_id == incident_id)).scalars())
            if EVIDENCE_AT_ONCE <= stored:
                return
            time.sleep(0.2)  # polling the database for the worker's rows, not timing anything

    def _write(self, result: DrillResult, incident: Incident | None) -> None:
        import json

        card = result.scorecard
        result.files["scorecard"] = _write_text(self.out_dir / "scorecard.txt", card.render())
        result.files["scorecard_json"] = _write_text(self.out_dir / "scorecard.json",
                                                     json.dumps(card.as_json(), indent=2, sort_keys=True) + "\n")
        result.files["chat"] = self.out_dir / "chat.txt"
        if incident is None:
            return
        self._wait_evidence(incident.id)
        try:
            from bot.export import export_incident
        except ImportError:  # export not in this build
            card.failures.append("post-mortem not written: bot.export is not available in this build")
            return
        bot = self.sandbox.bot  # type: ignore[union-attr]
        for fmt in ("md", "html"):
            doc = export_incident(bot.db, bot.settings, incident.id, fmt=fmt)
            result.files[f"postmortem_{fmt}"] = _write_text(self.out_dir / f"postmortem.{fmt}", doc.content)


EVIDENCE_AT_ONCE = frozenset({"readyz", "etcd", "apf"})  # the sections taken at T0 (Prometheus waits for its window)


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _slowest_apiserver(sandbox: Sandbox) -> float:
    """How long the slowest kube-apiserver took from start to /readyz (they start in parallel)."""
    plane = sandbox.plane
    return max((s.started_seconds or 0.0 for s in plane.apiservers.values()), default=0.0) if plane else 0.0


def _public(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts worth recording: not the live objects (``_flood``) nor the measurements (the scorecard has them)."""
    return {k: v for k, v in facts.items() if not k.startswith("_") and k != "measurements"}


def _facts(facts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in _public(facts).items())


def run_drill(name: str, **kwargs: Any) -> DrillResult:
    """Run one scenario end to end (see ``Drill``)."""
    keep = kwargs.pop("keep", None)
    return Drill(name, **kwargs).run(keep=keep)


def check_scenarios(names: list[str]) -> list[str]:
    for name in names:
        scenario(name)
    if not names:
        raise BadInput("name at least one drill scenario.", field="scenarios")
    return names
