"""What a fault scenario is: its declaration and the failure its check raises.

Apart from the library (bot/compose/sandbox/scenarios.py) because the library registers scenarios
declared in other modules (scenarios_customers, scenarios_guard, scenarios_webhook) and
those need the declaration too: with it here none of them imports the library back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.compose.sandbox.controlplane import ControlPlane


class VerificationFailed(Exception):
    """The components say the fault is not repaired (the sentence says what was seen)."""


def _nothing(plane: ControlPlane) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    component: str  # the incident must be about this component
    playbook: str | None  # the diagnosis must bind this playbook; None: escalate
    inject: Callable[[ControlPlane], dict[str, Any]]
    verify: Callable[[ControlPlane, dict[str, Any]], str]
    repair: Callable[[ControlPlane, dict[str, Any]], str] | None = None
    needs_snapshot: bool = False
    prepare: Callable[[ControlPlane], dict[str, Any]] = _nothing
    finish: Callable[[ControlPlane, dict[str, Any]], None] | None = None
    notes: list[str] = field(default_factory=list)
    needs: tuple[str, ...] = ()  # ControlPlaneOptions flags the drill turns on (e.g. admission_guard)
    # a fault ``prepare`` set up held (a client process started, ready, waiting for its go): releasing it
    # is the injection, so the fault's stamp is its real start, not a process's start-up
    release: Callable[[ControlPlane, dict[str, Any]], dict[str, Any]] | None = None

    def fire(self, plane: ControlPlane, prepared: dict[str, Any]) -> dict[str, Any]:
        """Inject the fault: release the one ``prepare`` set up held, or inject it now."""
        return self.release(plane, prepared) if self.release is not None else self.inject(plane)

    @property
    def expectation(self) -> str:
        return f"-> {self.playbook}" if self.playbook else "-> escalate"
