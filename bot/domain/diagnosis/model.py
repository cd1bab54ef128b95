"""What a diagnosis procedure (SOP) is, once loaded and validated.

A procedure says which incidents it is for (``applies_to``), which checks to
run in order, a decision tree over their results and the conclusions the tree
can reach.  Each conclusion names the root cause in words and either binds a
playbook (with parameters) or escalates to people.  Strings are jinja2
templates, kept as source text here and rendered at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

BRANCHES = ("then", "else", "unknown")  # condition true / false / not decidable


@dataclass(frozen=True)
class AppliesTo:
    """An incident matches when any of the listed facts holds (or ``fallback``)."""

    alerts: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ()
    fallback: bool = False

    def score(self, alert_names: set[str], alert_labels: Sequence[Mapping[str, str]], component: str | None) -> int:
        """How specifically this procedure fits: 3 alert name, 2 labels, 1 component, 0 fallback, -1 no."""
        if self.alerts and alert_names & set(self.alerts):
            return 3
        if self.labels and any(all(str(lbl.get(k)) == str(v) for k, v in self.labels.items())
                               for lbl in alert_labels):
            return 2
        if self.components and component and component in self.components:
            return 1
        return 0 if self.fallback else -1


@dataclass(frozen=True)
class Repeat:
    """Ask again while ``until`` (an expression over ``result``) is false: up to ``times`` answers,
    ``every`` seconds apart.  Confirms a bad state is not a blip (an etcd leader election, a flap)."""

    until: str
    times: int = 3
    every: float = 1.0


@dataclass(frozen=True)
class Check:
    """One step of evidence gathering; ``params`` are the kind's fields (templates)."""

    id: str
    kind: str
    params: Mapping[str, Any]
    description: str = ""
    timeout: float | None = None
    line: int = 0
    repeat: Repeat | None = None


@dataclass(frozen=True)
class Node:
    """A decision: ``when`` is a jinja2 expression over ``checks``; each branch names a node or conclusion."""

    id: str
    when: str
    then: str
    else_: str
    unknown: str
    checks_used: tuple[str, ...] = ()
    line: int = 0

    def branch(self, verdict: str) -> str:
        return {"then": self.then, "else": self.else_, "unknown": self.unknown}[verdict]


@dataclass(frozen=True)
class PlaybookBinding:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Conclusion:
    id: str
    cause: str
    playbook: PlaybookBinding | None = None
    escalate: bool = False
    line: int = 0


@dataclass(frozen=True)
class Procedure:
    name: str
    title: str
    path: str
    applies_to: AppliesTo
    checks: tuple[Check, ...]
    start: str
    nodes: Mapping[str, Node]
    conclusions: Mapping[str, Conclusion]
    vars: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    description: str = ""

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    @property
    def playbooks(self) -> list[str]:
        return sorted({c.playbook.name for c in self.conclusions.values() if c.playbook})
