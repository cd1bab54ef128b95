"""Service-level objectives on what customers feel, and the error budget left of each.

The objectives are declared once (``OBJECTIVES``) over the black-box probes' hourly tallies
(``probe_tallies``): a probe run is an event, a failed run is a bad event, and for a latency
objective so is a run slower than ``probes.slow_seconds`` for its kind. The same objectives are
the Prometheus rules' (``deploy/prometheus/rules.yml``, group ``incident-bot-slo``), which page
on fast burn; this module answers ``/incident slo`` and the report from the database, so the
answer does not depend on the Prometheus of the cluster that is burning.

Budget left = 1 - (bad / events) / (1 - objective): 100 % with no bad event, 0 % when the
window's allowance is spent, negative when it is overspent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.store.models import ProbeTally


@dataclass(frozen=True)
class Objective:
    name: str
    summary: str
    kind: str  # the probe targets' first word (pod, apiserver, write-path)
    objective: float  # the share of good events, e.g. 0.999
    latency: bool = False  # slow runs are bad too
    suffix: str = ""  # only targets ending so (/readyz)

    def covers(self, target: str) -> bool:
        return target.split(" ", 1)[0] == self.kind and target.endswith(self.suffix)


OBJECTIVES: tuple[Objective, ...] = (
    Objective("pod-creation", "a pod is scheduled and running", "pod", 0.999),
    Objective("pod-latency", "a pod runs within probes.slow_seconds.pod", "pod", 0.99, latency=True),
    Objective("availability", "the apiservers answer /readyz", "apiserver", 0.9999, suffix="/readyz"),
    Objective("api-latency", "a write is answered within probes.slow_seconds.write-path", "write-path", 0.99,
              latency=True),
)
BY_NAME = {o.name: o for o in OBJECTIVES}


@dataclass(frozen=True)
class Budget:
    cluster: str
    objective: Objective
    events: int
    bad: int
    last_hour_events: int
    last_hour_bad: int

    @property
    def good_ratio(self) -> float | None:
        return None if not self.events else 1 - self.bad / self.events

    @property
    def budget_left(self) -> float | None:
        """Share of the window's error budget not spent (1.0 untouched, <= 0 spent)."""
        if not self.events:
            return None
        return 1 - (self.bad / self.events) / (1 - self.objective.objective)

    @property
    def burn_rate_last_hour(self) -> float | None:
        """How many times faster than allowed the budget burned in the last hour (1.0: exactly on budget)."""
        if not self.last_hour_events:
            return None
        return (self.last_hour_bad / self.last_hour_events) / (1 - self.objective.objective)

    def as_dict(self) -> dict[str, object]:
        """The budget as the report's JSON carries it (ratios rounded to what people read)."""
        o = self.objective

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {"cluster": self.cluster, "objective": o.name, "summary": o.summary, "target": o.objective,
                "events": self.events, "bad": self.bad, "good_ratio": rounded(self.good_ratio),
                "budget_left": rounded(self.budget_left), "burn_rate_last_hour": rounded(self.burn_rate_last_hour)}

    def line(self) -> str:
        o = self.objective
        if not self.events:
            return f"{self.cluster} {o.name} (objective {o.objective:.2%}): no probe results in the window"
        burn = self.burn_rate_last_hour
        return (f"{self.cluster} {o.name} (objective {o.objective:.2%}): {self.good_ratio:.3%} good of "
                f"{self.events} probes, budget left {self.budget_left:.0%}"
                + (f", burning {burn:.1f}x in the last hour" if burn else ""))


def budgets(session: Session, now: datetime, *, window: timedelta = timedelta(days=30),
            cluster: str | None = None) -> list[Budget]:
    """The budget of every objective on every probed cluster over ``window`` up to ``now``."""
    since = (now - window).replace(minute=0, second=0, microsecond=0)
    hour_ago = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    query = select(ProbeTally).where(col(ProbeTally.hour) >= since)
    if cluster is not None:
        query = query.where(col(ProbeTally.cluster) == cluster)
    sums: dict[tuple[str, str], list[int]] = {}
    for row in session.execute(query).scalars():
        for o in OBJECTIVES:
            if not o.covers(row.target):
                continue
            bad = row.failures + (row.slow if o.latency else 0)
            acc = sums.setdefault((row.cluster, o.name), [0, 0, 0, 0])
            acc[0] += row.runs
            acc[1] += bad
            if row.hour >= hour_ago:
                acc[2] += row.runs
                acc[3] += bad
    return [Budget(c, BY_NAME[name], *acc) for (c, name), acc in sorted(sums.items())]
