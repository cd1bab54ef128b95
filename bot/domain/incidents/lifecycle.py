"""The incident lifecycle as a transitions table.

The table is the single source of truth for which moves exist; chat help,
error messages and guards are all derived from it.  The ``transitions``
machine decorates ``Lifecycle``, a plain object wrapping the stored row,
because a sqlmodel (pydantic) row refuses the methods transitions attaches to
its model (transitions issue #635).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from transitions import Machine, MachineError

from bot.core.errors import IllegalTransition
from bot.core.store.states import EARLY_STATES, STATES
from bot.core.store.models import Incident
from bot.core.store.refs import ref_of


# trigger, sources, destination, guard (a Lifecycle method name or None)
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "notify", "source": "detected", "dest": "notified"},
    {"trigger": "start_diagnosis", "source": ["notified", "diagnosing", "diagnosed"], "dest": "diagnosing"},
    {"trigger": "record_cause", "source": ["detected", "notified", "diagnosing", "diagnosed"], "dest": "diagnosed"},
    {
        "trigger": "start_mitigation",
        "source": "diagnosed",
        "dest": "mitigating",
        "conditions": "has_approved_run",
    },
    {"trigger": "mitigation_failed", "source": "mitigating", "dest": "diagnosed"},
    {"trigger": "mark_mitigated", "source": ["diagnosed", "mitigating"], "dest": "mitigated"},
    {"trigger": "resolve", "source": ["notified", "diagnosing", "diagnosed", "mitigated"], "dest": "resolved"},
    {"trigger": "close", "source": "resolved", "dest": "closed"},
    {"trigger": "reopen", "source": ["resolved", "closed"], "dest": "diagnosing"},
    {"trigger": "reopen", "source": "cancelled", "dest": "notified"},
    {"trigger": "cancel", "source": list(EARLY_STATES), "dest": "cancelled"},
    # merged into another incident: this one is closed, the other carries on (bot/domain/incidents/editing.py)
    {"trigger": "merge", "source": [s for s in STATES if s not in ("closed", "cancelled")], "dest": "closed"},
]

# The chat verb that pulls each trigger, for messages that name legal moves.
VERB_OF_TRIGGER = {
    "notify": "(announcement delivered)",
    "start_diagnosis": "diagnose",
    "record_cause": "cause",
    "start_mitigation": "run",
    "mitigation_failed": "(mitigation failed)",
    "mark_mitigated": "mitigated",
    "resolve": "resolve",
    "close": "close",
    "reopen": "reopen",
    "cancel": "cancel",
    "merge": "(merged into another incident)",
}
GUARD_REASONS = {"has_approved_run": "it needs an approved playbook run"}

# Entering a state stamps the stage timestamp once (the first time is the fact).
STAMP_ON_ENTER = {
    "notified": "notified_at",
    "diagnosed": "diagnosed_at",
    "mitigated": "mitigated_at",
    "resolved": "resolved_at",
    "closed": "closed_at",
    "cancelled": "cancelled_at",
}


class Lifecycle:
    """The transitions model: a plain object holding the row and the facts guards read."""

    def __init__(self, row: Incident, *, now: datetime, facts: dict[str, Any] | None = None) -> None:
        self.row = row
        self.now = now
        self.facts = facts or {}
        self.state = row.state

    # guards -------------------------------------------------------------
    def has_approved_run(self) -> bool:
        return bool(self.facts.get("approved_run"))

    # callbacks ----------------------------------------------------------
    def _after_change(self) -> None:
        row = self.row
        row.state = self.state
        stamp = STAMP_ON_ENTER.get(self.state)
        if stamp and getattr(row, stamp) is None:
            setattr(row, stamp, self.now)
        if self.state == "resolved" and row.mitigated_at is None:
            row.mitigated_at = self.now  # resolving without a mitigation means recovery is verified now
        if self.state in {"diagnosing", "notified"} and self._came_back():
            row.resolved_at = None
            row.closed_at = None
            row.cancelled_at = None
        row.updated_at = self.now

    def _came_back(self) -> bool:
        return self.row.resolved_at is not None or self.row.cancelled_at is not None


_MACHINE = Machine(
    model=None,
    states=list(STATES),
    transitions=TRANSITIONS,
    initial="detected",
    auto_transitions=False,
    after_state_change="_after_change",
    send_event=False,
)
_MACHINE_LOCK = threading.Lock()


def legal_triggers(state: str) -> list[str]:
    return [t for t in _MACHINE.get_triggers(state) if not t.startswith("to_")]


def legal_verbs(state: str) -> list[str]:
    verbs = []
    for trig in legal_triggers(state):
        verb = VERB_OF_TRIGGER.get(trig, trig)
        if not verb.startswith("(") and verb not in verbs:
            verbs.append(verb)
    return verbs


def fire(row: Incident, trigger: str, *, now: datetime, facts: dict[str, Any] | None = None) -> str:
    """Apply ``trigger`` to ``row``; returns the old state.

    Raises IllegalTransition with a sentence naming the legal moves when the
    table has no such move, or the guard that refused it.
    """
    model = Lifecycle(row, now=now, facts=facts)
    old = row.state
    with _MACHINE_LOCK:  # one shared machine; models are attached one at a time
        _MACHINE.add_model(model, initial=row.state)
        try:
            ok = getattr(model, trigger)()
        except (MachineError, AttributeError):
            raise IllegalTransition(illegal_message(row, trigger)) from None
        finally:
            _MACHINE.remove_model(model)
    if not ok:
        reasons = [GUARD_REASONS.get(str(c.func), str(c.func))  # our guards are named, never callables
                   for t in _MACHINE.events[trigger].transitions.get(old, []) for c in t.conditions]
        verb = VERB_OF_TRIGGER.get(trigger, trigger)
        raise IllegalTransition(f"{ref_of(row.id)} cannot `{verb}` yet: {'; '.join(reasons) or 'a guard refused it'}.")
    return old


def illegal_message(row: Incident, trigger: str) -> str:
    verb = VERB_OF_TRIGGER.get(trigger, trigger).strip("()")
    verbs = legal_verbs(row.state)
    now = ", ".join(f"`{v}`" for v in verbs) if verbs else "nothing (the incident is finished)"
    return f"{ref_of(row.id)} is {row.state}, so `{verb}` is not possible now. Possible now: {now}."


def can(row: Incident, trigger: str) -> bool:
    return trigger in legal_triggers(row.state)
