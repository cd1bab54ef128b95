"""The run lifecycle table: the moves it declares are the only ones, and a refusal names the legal ones."""

from __future__ import annotations

import pytest

from bot.core.errors import IllegalTransition
from bot.core.store.models import PlaybookRun
from playbooks.engine import run_lifecycle


def run_in(state: str) -> PlaybookRun:
    return PlaybookRun(id=7, state=state, playbook="throttle-client", cluster="c", plan={}, plan_text="",
                       plan_hash="x" * 64, params={}, requested_by="bob")


def test_a_run_goes_from_request_to_success_through_declared_moves() -> None:
    run = run_in("awaiting_approval")
    for trigger, state in (("approve", "approved"), ("start", "running"), ("succeed", "succeeded"),
                           ("undo", "running"), ("roll_back", "rolled_back")):
        assert run_lifecycle.move(run, trigger) == state == run.state


def test_an_illegal_move_says_what_is_legal_and_changes_nothing() -> None:
    run = run_in("succeeded")
    with pytest.raises(IllegalTransition) as err:
        run_lifecycle.move(run, "approve")
    assert str(err.value) == "RUN-7 is succeeded; it cannot approve (legal now: undo)."
    assert run.state == "succeeded"
    with pytest.raises(IllegalTransition, match=r"legal now: none \(it is finished\)"):
        run_lifecycle.move(run_in("expired"), "start")


def test_the_groups_are_consistent_with_the_table() -> None:
    assert set(run_lifecycle.STATES) == run_lifecycle.OPEN | run_lifecycle.TERMINAL | {"running"}
    for state in run_lifecycle.TERMINAL - run_lifecycle.UNDOABLE:
        assert run_lifecycle.legal_moves(state) == []  # finished runs never move again, but for undo
    assert all(m.dest in run_lifecycle.STATES for m in run_lifecycle.MOVES)
