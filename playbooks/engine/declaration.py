"""What a playbook is: a declaration the engine runs, never code that runs itself.

A playbook declares its parameters, its risk level, the blast radius it may
touch, how to compute a plan (the dry run), its ordered steps and how to
verify the result.  Each ``Step`` has ``check`` ("is my change already in
place?"), ``do``, an optional ``undo`` and a timeout: that is what lets the
engine resume after a crash without repeating a change, and roll back in
reverse when something fails.

Adding a playbook is declaring one ``Playbook`` in a module listed in
``playbooks.library.MODULES``; the engine, approvals, chat and CLI pick it up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from playbooks.engine.params import Param

RISKS = ("low", "high", "critical")


@dataclass
class PlanContext:
    """What a plan function may read: typed params, the cluster, the tools, the incident."""

    playbook: "Playbook"
    params: dict[str, Any]
    cluster: str
    tools: Any  # playbooks.engine.toolbox.Toolbox (or a test double with the same methods)
    incident: Mapping[str, Any] = field(default_factory=dict)  # id, title, severity, evidence ...
    now: datetime | None = None


@dataclass
class Plan:
    """The dry run's result: exact changes (hashed), their rendering, and their size.

    ``changes``: one dict per change, in execution order; everything a step
    needs to act must be in ``changes`` or ``facts`` so that what was approved
    is exactly what runs.  ``impact``: measured size per blast-radius limit
    (e.g. ``{"objects": 2, "subjects": 1}``).  ``lines``: the human rendering.
    """

    changes: list[dict[str, Any]]
    lines: list[str]
    impact: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    rollback: list[str] = field(default_factory=list)


@dataclass
class StepContext:
    """What a step (and verify) sees while a run executes."""

    run_id: int
    playbook: "Playbook"
    params: dict[str, Any]
    plan: dict[str, Any]  # the approved plan document (changes, facts ...)
    cluster: str
    tools: Any
    incident_id: int | None
    results: dict[str, Any]  # results of earlier steps, by step name (persisted with the checkpoint)
    deadline: float | None = None  # time.monotonic() after which the step is timed out

    @property
    def facts(self) -> dict[str, Any]:
        return self.plan.get("facts") or {}

    @property
    def changes(self) -> list[dict[str, Any]]:
        return self.plan.get("changes") or []


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``verify``: ``ok`` and a sentence for the timeline."""

    ok: bool
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One idempotent step.

    ``check(ctx) -> bool``: True when the change is already in place (the step
    is then skipped; on resume that is how a crash between doing and
    checkpointing repeats nothing).  A step without ``check`` is not safe to
    repeat: after a crash inside it the run is handed back to the commander.
    ``do(ctx) -> dict | None``: make the change; the dict is recorded.
    ``undo(ctx)``: remove the change (idempotent: undoing twice is harmless).
    ``repeatable``: the step leaves nothing behind (a server-side dry run, a
    read), so after a crash it is simply done again and never re-checked.
    """

    name: str
    do: Callable[[StepContext], Mapping[str, Any] | None]
    check: Callable[[StepContext], bool] | None = None
    undo: Callable[[StepContext], Any] | None = None
    timeout: float | None = None  # seconds; None: settings.playbooks.default_step_timeout_seconds
    describe: str = ""
    repeatable: bool = False  # changes nothing lasting (a dry run, a read): safe to do again, nothing to check


@dataclass(frozen=True)
class Playbook:
    name: str
    summary: str
    risk: str
    params: tuple[Param, ...]
    plan: Callable[[PlanContext], Plan]
    steps: tuple[Step, ...]
    verify: Callable[[StepContext], Verdict] | None = None
    blast_radius: Mapping[str, int] = field(default_factory=dict)  # limit per impact key
    ttl_param: str | None = None  # a duration parameter after which a succeeded run is undone
    details: str = ""

    def __post_init__(self) -> None:
        if self.risk not in RISKS:
            raise ValueError(f"playbook {self.name}: risk must be one of {RISKS}, not {self.risk!r}")
        if not self.steps:
            raise ValueError(f"playbook {self.name}: declares no steps")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"playbook {self.name}: step names must be unique")
        pnames = [p.name for p in self.params]
        if len(set(pnames)) != len(pnames):
            raise ValueError(f"playbook {self.name}: parameter names must be unique")
        if self.ttl_param is not None and self.ttl_param not in pnames:
            raise ValueError(f"playbook {self.name}: ttl_param {self.ttl_param!r} is not a declared parameter")

    @property
    def reversible(self) -> bool:
        return any(s.undo is not None for s in self.steps)

    def usage(self) -> str:
        return " ".join([self.name] + [p.usage() for p in self.params])
