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
from sqlmodel import col

from bot.core.config import Settings
from bot.core.errors import BadInput, ConfigError
from bot.core.store import timeline
from bot.domain.incidents.service import DRILL_LEASE_PREFIX
from bot.core.store.refs import ref_of
from bot.compose.sandbox.controlplane import ControlPlane, ControlPlaneOptions
from bot.compose.sandbox.drill_readings import DrillFailed, DrillReadings
from bot.compose.sandbox.sandbox import Sandbox
from bot.compose.sandbox.scenario import Scenario, VerificationFailed
from bot.compose.sandbox.scenarios import scenario
from bot.compose.sandbox.scorecard import Scorecard, build_stages
from bot.core.store.models import Incident, Lease, PlaybookRun, Snapshot, TimelineEvent


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


class Drill(DrillReadings):
    """One fault drill: the sandbox, the fault, the bot's own pipeline watched stage by stage, the scorecard."""

    def __init__(self, name: str, *, out_dir: Path | None = None, deadlines: Deadlines | None = None,
                 echo: Callable[[str], None] = print, options: ControlPlaneOptions | None = None) -> None:
        self.scenario: Scenario = scenario(name)
        self.out_dir = Path(out_dir) if out_dir else default_out_dir(name)
        self.deadlines = deadlines or Deadlines()
        self.echo = echo
        self.options = options or ControlPlaneOptions()
        if self.scenario.needs:  # the sandbox parts this scenario cannot run without
            needed: dict[str, Any] = {flag: True for flag in self.scenario.needs}  # boolean parts of the options
            self.options = dataclasses.replace(self.options, **needed)
        self.sandbox: Sandbox | None = None
        self._chat: TextIO | None = None

    # -- the whole drill ----------------------------------------------------------
    def run(self, *, keep: Callable[[Sandbox], None] | None = None) -> DrillResult:
        """Run the drill; ``keep`` (if given) is called with the live sandbox before it is thrown away."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        chat = self._chat = open(self.out_dir / "chat.txt", "w", encoding="utf-8")
        try:
            from bot.chat.console import ConsoleDeliverer

            self.echo(f"drill {self.scenario.name}: starting the sandbox (etcd x{self.options.etcd_members}, "
                      f"apiservers, HAProxy, Prometheus, Alertmanager, the bot)")
            self.sandbox = Sandbox(options=self.options,
                                   deliverer_factory=lambda bot: ConsoleDeliverer(bot.dispatcher, chat))
            began = time.monotonic()
            self.sandbox.start()
            self.echo(f"drill {self.scenario.name}: sandbox ready in {time.monotonic() - began:.1f}s "
                      f"(kube-apiservers ready in {_slowest_apiserver(self.sandbox):.1f}s)")
            root = self.sandbox.root
            assert self.sandbox.settings is not None  # start() built them
            check_drill_target(self.sandbox.settings, self.options.cluster)
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
        facts.update(scen.fire(plane, facts))
        self.echo(f"drill {scen.name}: fault injected: {scen.summary} ({_facts(facts)})")
        incident: Incident | None = None
        run: PlaybookRun | None = None
        diagnosed_at: datetime | None = None
        try:
            incident = self._wait(lambda: self._incident(fault_at), fault_at, self.deadlines.notify,
                                  "an incident about the fault to be opened")
            incident_id = incident.id  # the waits below close over this, not over the changing row
            card.incident = ref_of(incident.id)
            self._record(incident.id, "drill.fault", f"drill {scen.name}: fault injected: {scen.summary}",
                         at=fault_at, data={"scenario": scen.name, **_public(facts)})
            self.echo(f"drill {scen.name}: {card.incident} opened by {incident.source}: {incident.title}")
            incident = self._wait(lambda: self._stamped(incident_id, "notified_at"), fault_at,
                                  self.deadlines.notify, f"{card.incident} to be notified")
            conclusion = self._wait(lambda: self._conclusion(incident_id), fault_at, self.deadlines.diagnose,
                                    f"{card.incident} to be diagnosed")
            diagnosed_at = conclusion.at
            self._check_conclusion(conclusion)
            if scen.playbook:
                run = self._wait(lambda: self._run(incident_id), fault_at, self.deadlines.diagnose,
                                 f"a playbook run to be proposed for {card.incident}")
                if run.playbook != scen.playbook:
                    raise DrillFailed(f"the diagnosis bound {run.playbook}; the scenario expects {scen.playbook}")
                self.echo(f"drill {scen.name}: RUN-{run.id} {run.playbook} proposed"
                          + (" (auto-approved: drill)" if run.auto_approved else ""))
                run_id = run.id
                run = self._wait(lambda: self._finished(run_id), fault_at, self.deadlines.mitigate,
                                 f"RUN-{run.id} {run.playbook} to finish")
                if run.state != "succeeded":
                    raise DrillFailed(f"RUN-{run.id} {run.playbook} ended {run.state}: {run.error or 'no reason given'}")
                incident = self._wait(lambda: self._stamped(incident_id, "mitigated_at"), fault_at,
                                      self.deadlines.mitigate, f"{card.incident} to be marked mitigated")
                card.outcome = (f"diagnosis bound {run.playbook}; RUN-{run.id} "
                                f"{'auto-approved' if run.auto_approved else 'approved'} and succeeded")
            else:
                self._expect_escalation(card, incident_id)
            self._verify_outcome(card, incident_id, facts)
        except (DrillFailed, VerificationFailed) as exc:
            card.failures.append(str(exc))
        finally:
            self._release_lease()
            if scen.finish is not None:
                scen.finish(plane, facts)
            card.measurements = dict(facts.get("measurements") or {})
        return self._score(card, incident, run, fault_at, diagnosed_at)

    def _check_conclusion(self, conclusion: TimelineEvent) -> None:
        """The diagnosis must bind the playbook the scenario expects (or escalate when it expects none)."""
        scen = self.scenario
        bound = (conclusion.data or {}).get("playbook")
        self.echo(f"drill {scen.name}: diagnosed ({'escalate' if not bound else bound}): "
                  f"{(conclusion.data or {}).get('cause') or conclusion.text}")
        if bound != scen.playbook:
            raise DrillFailed(f"the diagnosis concluded {bound or 'escalate'}; the scenario expects "
                              f"{scen.playbook or 'escalate'} ({conclusion.text})")

    def _expect_escalation(self, card: Scorecard, incident_id: int) -> None:
        """A scenario without a playbook: the commander gets the evidence, and no run is proposed."""
        time.sleep(1.0)  # a proposal would follow the diagnosis within the worker's tick
        proposed = self._run(incident_id)
        if proposed is not None:
            raise DrillFailed(f"the diagnosis proposed {proposed.playbook}; the scenario expects escalation")
        card.outcome = "diagnosis escalated to the commander with its evidence (no playbook proposed)"

    def _verify_outcome(self, card: Scorecard, incident_id: int, facts: dict[str, Any]) -> None:
        """Check the outcome through the real components (and repair what the bot rightly left to people)."""
        scen, plane = self.scenario, self._plane
        card.verification = scen.verify(plane, facts)
        self._record(incident_id, "drill.verified", f"drill {scen.name}: verified: {card.verification}",
                     data={"scenario": scen.name})
        if scen.repair is not None:
            repaired = scen.repair(plane, facts)
            self._record(incident_id, "drill.repaired", f"drill {scen.name}: {repaired}")
            card.verification += f"; {repaired}"

    def _score(self, card: Scorecard, incident: Incident | None, run: PlaybookRun | None, fault_at: datetime,
               diagnosed_at: datetime | None) -> DrillResult:
        """The stages as the database recorded them, the scorecard and the post-mortem written."""
        incident = self._reload(incident.id) if incident is not None and incident.id is not None else None
        card.is_drill = incident.is_drill if incident is not None else None
        card.alerts = self._alerts_since(fault_at)
        if run is not None and run.id is not None:
            run = self._reload_run(run.id)
            card.auto_approved = run.auto_approved if run is not None else None
        card.stages = build_stages(fault_at=fault_at, incident=incident, budgets=self._bot.settings.budgets,
                                   diagnosed_at=diagnosed_at, checks=self._check_spans(incident),
                                   first_alert=self._first_alert(incident), step_seconds=self._step_seconds(run),
                                   mitigation_expected=self.scenario.playbook is not None)
        result = DrillResult(card, self.out_dir)
        self._write(result, incident)
        self.echo(card.render())
        return result

    @property
    def _plane(self) -> ControlPlane:
        """The sandbox's control plane: the drill's steps run inside ``run``, with the sandbox up."""
        assert self.sandbox is not None and self.sandbox.plane is not None
        return self.sandbox.plane

    def _wait_snapshot(self) -> None:
        bot = self._bot

        def newest() -> Snapshot | None:
            with bot.db.session() as session:
                return session.execute(select(Snapshot).where(col(Snapshot.cluster) == self.options.cluster)
                                       .order_by(col(Snapshot.id).desc())).scalars().first()
        start = bot.clock.now()
        snap = self._wait(newest, start, self.deadlines.snapshot, "the first etcd snapshot in the backup catalogue")
        self.echo(f"drill {self.scenario.name}: etcd snapshot in the catalogue (revision {snap.revision}, "
                  f"{snap.size_bytes} bytes)")

    # -- writing ----------------------------------------------------------------------
    def _record(self, incident_id: int, kind: str, text: str, *, at: datetime | None = None,
                data: dict[str, Any] | None = None) -> None:
        bot = self._bot
        with bot.db.session() as session:
            timeline.record(session, incident_id, kind, text, at=at or bot.clock.now(), actor="drill",
                            source="drill", data=data or {}, dedupe_key=kind)

    def _hold_lease(self) -> None:
        bot = self._bot
        now = bot.clock.now()
        total = self.deadlines.notify + self.deadlines.diagnose + self.deadlines.mitigate
        name = DRILL_LEASE_PREFIX + self.options.cluster
        with bot.db.session() as session:
            lease = session.get(Lease, name) or Lease(name=name, holder="")
            lease.holder, lease.acquired_at = f"drill {self.scenario.name}", now
            lease.expires_at = now + timedelta(seconds=total + 60)
            session.add(lease)

    def _release_lease(self) -> None:
        bot = self._bot
        with bot.db.session() as session:
            lease = session.get(Lease, DRILL_LEASE_PREFIX + self.options.cluster)
            if lease is not None:
                session.delete(lease)

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
            from bot.domain.export import export_incident
        except ImportError:  # export not in this build
            card.failures.append("post-mortem not written: bot.domain.export is not available in this build")
            return
        bot = self._bot
        for fmt in ("md", "html"):
            doc = export_incident(bot.db, bot.settings, incident.id, fmt=fmt)
            result.files[f"postmortem_{fmt}"] = _write_text(self.out_dir / f"postmortem.{fmt}", doc.content)


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
