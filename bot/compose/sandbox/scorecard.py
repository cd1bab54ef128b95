"""The drill's scorecard: each stage of the 1-5-10 against its budget, and who spent the time.

Times are counted from the moment the fault was injected (the drill knows it
exactly; a real incident only knows the alert's ``startsAt``).  Each stage is
split into the bot's own time and the time spent waiting on others:

* notify: Prometheus (scrape, rule evaluation, ``for``) and Alertmanager
  (dispatch) until the webhook arrived, then the bot (ingest, page, deliver);
* diagnose: the bot running the procedure (its checks query Prometheus, etcd
  and the apiservers);
* mitigate: the playbook's steps doing the real work (etcd, HAProxy, the
  apiserver), and the engine around them (proposal, approval, scheduling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# what the sandbox aims for, with 1-second scrape and evaluation intervals
SANDBOX_GOALS = {"notify": 3.0, "diagnose": 15.0, "mitigate": 30.0}
STAGE_FIELDS = {"notify": "notified_at", "diagnose": "diagnosed_at", "mitigate": "mitigated_at"}


@dataclass
class Stage:
    name: str
    elapsed: float | None  # seconds from the fault; None: not reached
    budget: float  # the incident's 1-5-10 budget for this stage
    goal: float  # the sandbox's goal
    bot_seconds: float | None = None
    waiting_seconds: float | None = None
    waiting_on: str = ""
    applicable: bool = True

    @property
    def verdict(self) -> str:
        if not self.applicable:
            return "n/a"
        if self.elapsed is None:
            return "MISSED"
        if self.elapsed > self.budget:
            return "BREACHED"
        return "met" if self.elapsed <= self.goal else "over goal"


@dataclass
class Scorecard:
    scenario: str
    expectation: str
    incident: str | None
    fault_at: datetime
    stages: list[Stage] = field(default_factory=list)
    outcome: str = ""  # what the diagnosis concluded and what ran
    verification: str = ""
    failures: list[str] = field(default_factory=list)
    is_drill: bool | None = None  # the incident was marked a drill (its runs may be auto-approved)
    auto_approved: bool | None = None  # the playbook run was approved by the bot itself (drill policy)
    components: list[dict[str, str]] = field(default_factory=list)  # the real components the drill ran
    measurements: dict[str, Any] = field(default_factory=dict)  # what the scenario measured (e.g. clients)

    @property
    def passed(self) -> bool:
        """Every stage reached within the incident's 1-5-10 budget, and the outcome verified.

        The sandbox's tighter goals are reported beside each stage ("met" / "over goal"), not
        required: they measure speed, which a loaded machine changes, not correctness.
        """
        return not self.failures and all(s.verdict in ("met", "over goal", "n/a") for s in self.stages)

    @property
    def goals_met(self) -> bool:
        return all(s.verdict in ("met", "n/a") for s in self.stages)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fault_at"] = self.fault_at.isoformat()
        data["passed"] = self.passed
        data["goals_met"] = self.goals_met
        for stage, raw in zip(self.stages, data["stages"]):
            raw["verdict"] = stage.verdict
        return data

    def render(self) -> str:
        lines = [f"Drill {self.scenario} ({self.expectation}): {'PASSED' if self.passed else 'FAILED'}",
                 f"  incident {self.incident or '(none)'}{' (marked as a drill)' if self.is_drill else ''}; fault injected at {self.fault_at.isoformat(timespec='milliseconds')}",
                 "",
                 f"  {'stage':<10}{'from fault':>12}{'goal':>8}{'budget':>9}  {'verdict':<10}{'bot':>8}{'waiting':>9}  waiting on"]
        for s in self.stages:
            lines.append(f"  {s.name:<10}{_secs(s.elapsed) if s.applicable else 'n/a':>12}{_secs(s.goal):>8}"
                         f"{_secs(s.budget):>9}  {s.verdict:<10}{_secs(s.bot_seconds):>8}{_secs(s.waiting_seconds):>9}"
                         f"  {s.waiting_on}")
        lines.append("")
        if self.outcome:
            lines.append(f"  outcome:  {self.outcome}")
        if self.verification:
            lines.append(f"  verified: {self.verification}")
        for failure in self.failures:
            lines.append(f"  FAILURE:  {failure}")
        for name, values in self.measurements.items():
            shown = ", ".join(f"{k} {v}" for k, v in values.items()) if isinstance(values, dict) else values
            lines.append(f"  measured: {name}: {shown}")
        if self.components:
            lines.append("  components: " + ", ".join(f"{c['component']} {c['name']} {c['version']}"
                                                      for c in self.components))
        return "\n".join(lines) + "\n"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def since(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else max(0.0, (end - start).total_seconds())


def build_stages(*, fault_at: datetime, incident: Any, budgets: Any, first_alert: Any | None,
                 step_seconds: float | None, mitigation_expected: bool,
                 diagnosed_at: datetime | None = None, check_seconds: float | None = None) -> list[Stage]:
    """The three stages from the incident's stored timestamps (and its first alert, its run's steps).

    ``diagnosed_at`` is the diagnosis conclusion's time: an escalation locates
    the fault without recording a cause for a playbook, and still ends the stage.
    ``check_seconds`` is how long the diagnosis's checks took, from the
    diagnosis start to its last check (the components answering).
    """
    budget = budgets.for_severity(incident.severity) if incident is not None else budgets.default
    detected = incident.detected_at if incident is not None else None
    notified = incident.notified_at if incident is not None else None
    diagnosed = (incident.diagnosed_at if incident is not None else None) or diagnosed_at
    mitigated = incident.mitigated_at if incident is not None else None

    notify = Stage("notify", since(fault_at, notified), budget.notify, SANDBOX_GOALS["notify"])
    if detected is not None and notified is not None:
        notify.waiting_seconds = since(fault_at, detected)
        notify.bot_seconds = since(detected, notified)
        if getattr(incident, "source", None) == "prober":
            notify.waiting_on = "the black-box prober (its interval, then a confirming re-probe)"
        elif first_alert is not None:
            prom = since(fault_at, first_alert.starts_at) or 0.0
            am = since(first_alert.starts_at, first_alert.received_at) or 0.0
            notify.waiting_on = f"Prometheus {prom:.1f}s (scrape, rules, for), Alertmanager {am:.1f}s"
        else:
            notify.waiting_on = "the prober's interval and re-probe"

    diagnose = Stage("diagnose", since(fault_at, diagnosed), budget.diagnose, SANDBOX_GOALS["diagnose"])
    if notified is not None and diagnosed is not None:
        total = since(notified, diagnosed) or 0.0
        checks = min(check_seconds or 0.0, total)
        diagnose.waiting_seconds = checks
        diagnose.bot_seconds = total - checks
        diagnose.waiting_on = "the checks (Prometheus, etcd, apiservers answering)"

    mitigate = Stage("mitigate", since(fault_at, mitigated), budget.mitigate, SANDBOX_GOALS["mitigate"],
                     applicable=mitigation_expected)
    if diagnosed is not None and mitigated is not None:
        total = since(diagnosed, mitigated) or 0.0
        steps = min(step_seconds or 0.0, total)
        mitigate.waiting_seconds = steps
        mitigate.bot_seconds = total - steps
        mitigate.waiting_on = "the playbook's steps (etcd, HAProxy, apiserver work)"
    return [notify, diagnose, mitigate]
