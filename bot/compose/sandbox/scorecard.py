"""The drill's scorecard: each stage of the 1-5-10 against its budget, and who spent the time.

Times are counted from the moment the fault was injected (the drill knows it
exactly; a real incident only knows the alert's ``startsAt``).  Each stage is
split into the bot's own time and the time spent waiting on others:

* notify: Prometheus (scrape, rule evaluation, ``for``) and Alertmanager
  (dispatch) until the webhook arrived at the bot's HTTP handler (the alert's
  ``received_at``); from there on the bot (queueing for the writer, ingest,
  declare, page, deliver the card);
* diagnose: the components (Prometheus, etcd, the apiservers) for as long as
  at least one of them was working on a check's answer; everything else is the
  bot's: running the procedure, the timeouts it waited out (a check that gave
  no answer) and its own pauses between the answers of a ``repeat``;
* mitigate: the playbook's steps doing the real work (etcd, HAProxy, the
  apiserver), and the engine around them (proposal, approval, scheduling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
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
    bot_on: str = ""  # what the bot's own share was spent on (ingest, timeouts, repeat pauses)

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
    alerts: list[dict[str, Any]] = field(default_factory=list)  # every alert received after the fault

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
                         f"  {s.waiting_on}" + (f"; bot: {s.bot_on}" if s.bot_on else ""))
        lines.append("")
        if self.outcome:
            lines.append(f"  outcome:  {self.outcome}")
        if self.verification:
            lines.append(f"  verified: {self.verification}")
        for failure in self.failures:
            lines.append(f"  FAILURE:  {failure}")
        if self.alerts:
            firing = sorted({a["alertname"] for a in self.alerts})
            lines.append(f"  alerts:   {len(self.alerts)} received after the fault: {', '.join(firing)}")
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


@dataclass(frozen=True)
class CheckSpan:
    """One diagnosis check as its timeline event recorded it: asked, answered, and the bot's pauses between."""

    asked: datetime
    answered: datetime
    known: bool  # False: no answer (a timeout the bot waited out, or an error)
    slept: float = 0.0  # the bot's own pauses between the answers of a ``repeat``


@dataclass(frozen=True)
class CheckTime:
    """A diagnosis's time split: the components answering vs the bot's own timeouts and pauses."""

    components: float
    timeouts: float
    sleeps: float


def split_check_time(spans: Sequence[CheckSpan], start: datetime, end: datetime) -> CheckTime:
    """Within ``[start, end]``: how long at least one component was working on an answer (a union, since
    checks run in parallel), and what the bot spent waiting out checks that never answered and pausing.

    A check without an answer is the bot's time: its timeout is the bot's choice.  A repeated check's
    pauses are taken off its end (the answers are short next to them), an approximation that never books
    a pause to a component.
    """
    busy: list[tuple[datetime, datetime]] = []
    timeouts = sleeps = 0.0
    for span in spans:
        if not span.known:
            timeouts += since(max(span.asked, start), min(span.answered, end)) or 0.0
            continue
        sleeps += span.slept
        a, b = max(span.asked, start), min(span.answered - timedelta(seconds=span.slept), end)
        if b > a:
            busy.append((a, b))
    total, reach = 0.0, start
    for a, b in sorted(busy):
        if b > reach:
            total += (b - max(a, reach)).total_seconds()
            reach = b
    return CheckTime(total, timeouts, sleeps)


def build_stages(*, fault_at: datetime, incident: Any, budgets: Any, first_alert: Any | None,
                 step_seconds: float | None, mitigation_expected: bool,
                 diagnosed_at: datetime | None = None, checks: Sequence[CheckSpan] = ()) -> list[Stage]:
    """The three stages from the incident's stored timestamps (and its first alert, its run's steps).

    ``diagnosed_at`` is the diagnosis conclusion's time: an escalation locates
    the fault without recording a cause for a playbook, and still ends the stage.
    ``checks`` are the diagnosis's checks answered before its conclusion.
    """
    budget = budgets.for_severity(incident.severity) if incident is not None else budgets.default
    detected = incident.detected_at if incident is not None else None
    notified = incident.notified_at if incident is not None else None
    diagnosed = (incident.diagnosed_at if incident is not None else None) or diagnosed_at
    mitigated = incident.mitigated_at if incident is not None else None
    return [_notify(fault_at, incident, budget, first_alert, detected, notified),
            _diagnose(fault_at, budget, notified, diagnosed, checks),
            _mitigate(fault_at, budget, diagnosed, mitigated, step_seconds, mitigation_expected)]


def _notify(fault_at: datetime, incident: Any, budget: Any, first_alert: Any | None, detected: datetime | None,
            notified: datetime | None) -> Stage:
    """Until the webhook's arrival the monitoring's (or the prober's) time; from it on the bot's."""
    notify = Stage("notify", since(fault_at, notified), budget.notify, SANDBOX_GOALS["notify"])
    if detected is None or notified is None:
        return notify
    if getattr(incident, "source", None) == "prober" or first_alert is None:
        notify.waiting_seconds = since(fault_at, detected)
        notify.bot_seconds = since(detected, notified)
        notify.waiting_on = ("the black-box prober (its interval, then a confirming re-probe)"
                             if getattr(incident, "source", None) == "prober" else "the prober's interval and re-probe")
        return notify
    arrived = max(fault_at, min(first_alert.received_at, detected))
    notify.waiting_seconds = since(fault_at, arrived)
    notify.bot_seconds = since(arrived, notified)
    prom = since(fault_at, first_alert.starts_at) or 0.0
    am = since(max(fault_at, first_alert.starts_at), arrived) or 0.0
    notify.waiting_on = f"Prometheus {prom:.1f}s (scrape, rules, for), Alertmanager {am:.1f}s"
    notify.bot_on = (f"webhook to declared {since(arrived, detected) or 0.0:.1f}s, "
                     f"declared to card delivered {since(detected, notified) or 0.0:.1f}s")
    return notify


def _diagnose(fault_at: datetime, budget: Any, notified: datetime | None, diagnosed: datetime | None,
              checks: Sequence[CheckSpan]) -> Stage:
    diagnose = Stage("diagnose", since(fault_at, diagnosed), budget.diagnose, SANDBOX_GOALS["diagnose"])
    if notified is None or diagnosed is None:
        return diagnose
    total = since(notified, diagnosed) or 0.0
    split = split_check_time(checks, notified, diagnosed) if diagnosed > notified else CheckTime(0.0, 0.0, 0.0)
    diagnose.waiting_seconds = min(split.components, total)
    diagnose.bot_seconds = total - diagnose.waiting_seconds
    diagnose.waiting_on = "the checks' components answering (Prometheus, etcd, apiservers)"
    diagnose.bot_on = f"checks without an answer (timeouts) {split.timeouts:.1f}s, repeat pauses {split.sleeps:.1f}s"
    return diagnose


def _mitigate(fault_at: datetime, budget: Any, diagnosed: datetime | None, mitigated: datetime | None,
              step_seconds: float | None, expected: bool) -> Stage:
    mitigate = Stage("mitigate", since(fault_at, mitigated), budget.mitigate, SANDBOX_GOALS["mitigate"],
                     applicable=expected)
    if diagnosed is not None and mitigated is not None:
        total = since(diagnosed, mitigated) or 0.0
        steps = min(step_seconds or 0.0, total)
        mitigate.waiting_seconds = steps
        mitigate.bot_seconds = total - steps
        mitigate.waiting_on = "the playbook's steps (etcd, HAProxy, apiserver work)"
    return mitigate
