"""The three clocks of 1-5-10, computed from stored timestamps and ``now``.

Nothing here keeps time: a stage's verdict is a pure function of T0, the
stage's timestamp (if reached), its budget and the current time, so a restart
or a second replica computes the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.core.clock import human_duration
from bot.core.config.budgets import Budgets, StageBudgets
from bot.core.store.states import FINISHED_STATES

# stage name -> (timestamp attribute, label for people)
STAGES: dict[str, tuple[str, str]] = {
    "notify": ("notified_at", "notified"),
    "diagnose": ("diagnosed_at", "diagnosed"),
    "mitigate": ("mitigated_at", "mitigated"),
}


@dataclass(frozen=True)
class StageClock:
    stage: str
    label: str
    budget_seconds: float
    deadline: datetime
    reached_at: datetime | None
    verdict: str  # met | breached | running | warning | stopped (never reached, not late)
    elapsed_seconds: float  # from T0 to reached_at (or now)
    remaining_seconds: float  # until the deadline (negative once past)

    @property
    def done(self) -> bool:
        return self.reached_at is not None

    def describe(self) -> str:
        """One line a responder reads at a glance."""
        budget = _fmt(self.budget_seconds)
        if self.verdict == "met":
            return f"{self.label} in {_fmt(self.elapsed_seconds)} (budget {budget}): met"
        if self.verdict == "breached" and self.reached_at is not None:
            return f"{self.label} in {_fmt(self.elapsed_seconds)} (budget {budget}): breached by {_fmt(-self.remaining_seconds)}"
        if self.verdict == "breached":
            return f"not {self.label} after {_fmt(self.elapsed_seconds)} (budget {budget}): breached by {_fmt(-self.remaining_seconds)}"
        if self.verdict == "stopped":
            return f"never {self.label} (budget {budget}): not reached"
        return f"{_fmt(self.remaining_seconds)} left to be {self.label} (budget {budget})" + (
            ": warning" if self.verdict == "warning" else ""
        )


def _fmt(seconds: float) -> str:
    return human_duration(abs(seconds))


class Staged(Protocol):
    """What a clock reads: an incident, one cluster of a fleet incident, or a plain row of either
    (the board reads columns, not ORM objects); the stage timestamps are read by name."""

    @property
    def started_at(self) -> datetime: ...
    @property
    def state(self) -> str: ...
    @property
    def cancelled_at(self) -> datetime | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...


class StagedIncident(Staged, Protocol):
    @property
    def severity(self) -> str: ...


def stage_clock(incident: Staged, stage: str, budgets: StageBudgets, now: datetime, warn_ratio: float = 0.8) -> StageClock:
    attr, label = STAGES[stage]
    t0 = incident.started_at
    budget = float(getattr(budgets, stage))
    deadline = t0 + timedelta(seconds=budget)
    reached = getattr(incident, attr)
    stopped_at = (incident.cancelled_at or incident.resolved_at) if incident.state in FINISHED_STATES else None
    end = reached or stopped_at or now
    elapsed = (end - t0).total_seconds()
    remaining = (deadline - end).total_seconds()
    if reached is not None:
        verdict = "met" if reached <= deadline else "breached"
    elif incident.state in FINISHED_STATES:
        verdict = "breached" if end > deadline else "stopped"
    elif now > deadline:
        verdict = "breached"
    elif elapsed >= warn_ratio * budget:
        verdict = "warning"
    else:
        verdict = "running"
    return StageClock(stage, label, budget, deadline, reached, verdict, elapsed, remaining)


def clocks(incident: StagedIncident, budgets: Budgets, now: datetime) -> list[StageClock]:
    stage_budgets = budgets.for_severity(incident.severity)
    return [stage_clock(incident, stage, stage_budgets, now, budgets.warn_ratio) for stage in STAGES]
