"""The playbook run's lifecycle as a table, like the incident's (``bot/domain/incidents/lifecycle.py``).

Every change of a run's state goes through ``move(run, trigger)``: the table says which moves
exist, from which states, to which state and why, so the engine's guards, its error messages
(``IllegalTransition`` naming the legal moves) and the documentation (``describe()``) all come
from one place. The state groups (open, finished, awaiting a person) are named here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.errors import IllegalTransition
from bot.core.store.models import PlaybookRun

STATES = ("planned", "awaiting_approval", "approved", "running", "succeeded", "failed", "rolled_back",
          "rejected", "aborted", "expired", "handed_back")
OPEN = frozenset({"planned", "awaiting_approval", "approved"})  # not started: nothing was changed
TERMINAL = frozenset({"succeeded", "failed", "rolled_back", "rejected", "aborted", "expired", "handed_back"})
UNDOABLE = frozenset({"succeeded", "handed_back"})  # its changes can be removed on request


@dataclass(frozen=True)
class Move:
    trigger: str
    sources: frozenset[str]
    dest: str
    why: str


def _m(trigger: str, sources: set[str] | frozenset[str], dest: str, why: str) -> Move:
    return Move(trigger, frozenset(sources), dest, why)


MOVES: tuple[Move, ...] = (
    _m("approve", {"awaiting_approval"}, "approved", "every approval the policy needs is in, for the current plan"),
    _m("approval_lapsed", {"approved"}, "awaiting_approval",
       "before it started, an approval expired or the re-computed plan differs: it needs approving again"),
    _m("expire", {"awaiting_approval"}, "expired", "nobody approved it within the request's time to live"),
    _m("reject", {"awaiting_approval", "approved"}, "rejected", "a person with the right said no"),
    _m("abort_unstarted", OPEN, "aborted", "stopped before it started; nothing was changed"),
    _m("start", {"approved"}, "running", "the worker took the cluster's lease and starts the steps"),
    _m("refuse_start", {"approved"}, "aborted", "its incident is no longer diagnosed or mitigating"),
    _m("fail_to_start", {"approved"}, "failed", "it could not be re-planned before execution"),
    _m("succeed", {"running"}, "succeeded", "every step done and the verification passed"),
    _m("roll_back", {"running"}, "rolled_back", "a step or the verification failed (or its undo ran); rolled back"),
    _m("abort", {"running"}, "aborted", "a person aborted it; what it did was rolled back"),
    _m("fail", {"running"}, "failed", "the rollback itself failed: the cluster needs a person"),
    _m("hand_back", {"running"}, "handed_back", "the state is unclear after a crash: the commander decides"),
    _m("undo", UNDOABLE, "running", "undo on request or at the end of its time to live: the rollback runs"),
)
_BY_TRIGGER: dict[str, Move] = {m.trigger: m for m in MOVES}


def legal_moves(state: str) -> list[str]:
    return [m.trigger for m in MOVES if state in m.sources]


def move(run: PlaybookRun, trigger: str) -> str:
    """Move ``run`` by ``trigger``; an illegal move names the state and the moves that are legal."""
    step = _BY_TRIGGER[trigger]  # an unknown trigger is a programming error (KeyError)
    if run.state not in step.sources:
        legal = ", ".join(legal_moves(run.state)) or "none (it is finished)"
        raise IllegalTransition(f"RUN-{run.id} is {run.state.replace('_', ' ')}; it cannot {trigger.replace('_', ' ')} "
                                f"(legal now: {legal}).")
    run.state = step.dest
    return step.dest


def describe() -> str:
    """The table as text (for docs and help): one line per move."""
    return "\n".join(f"{m.trigger}: {' | '.join(sorted(m.sources))} -> {m.dest} ({m.why})" for m in MOVES)
