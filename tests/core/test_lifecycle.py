"""The lifecycle table: legal moves, plain-sentence refusals, guards, stamps."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.core.errors import IllegalTransition
from bot.domain.incidents import lifecycle
from bot.core.store.models import Incident

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def incident(state: str) -> Incident:
    return Incident(id=7, title="t", state=state, started_at=NOW, detected_at=NOW, created_at=NOW, updated_at=NOW)


@pytest.mark.parametrize(
    ("state", "trigger", "dest"),
    [
        ("detected", "notify", "notified"),
        ("notified", "start_diagnosis", "diagnosing"),
        ("diagnosing", "record_cause", "diagnosed"),
        ("diagnosed", "mark_mitigated", "mitigated"),
        ("mitigating", "mitigation_failed", "diagnosed"),
        ("mitigated", "resolve", "resolved"),
        ("resolved", "close", "closed"),
        ("resolved", "reopen", "diagnosing"),
        ("cancelled", "reopen", "notified"),
        ("notified", "cancel", "cancelled"),
    ],
)
def test_legal_moves_follow_the_table(state: str, trigger: str, dest: str) -> None:
    row = incident(state)
    lifecycle.fire(row, trigger, now=NOW)
    assert row.state == dest


def test_an_illegal_move_names_the_moves_that_are_legal_now() -> None:
    row = incident("resolved")
    with pytest.raises(IllegalTransition) as err:
        lifecycle.fire(row, "cancel", now=NOW)
    assert str(err.value) == "INC-7 is resolved, so `cancel` is not possible now. Possible now: `close`, `reopen`."
    assert row.state == "resolved"


def test_cancel_is_only_possible_from_the_early_states() -> None:
    for state in lifecycle.STATES:
        assert lifecycle.can(incident(state), "cancel") == (state in lifecycle.EARLY_STATES)


def test_mitigation_needs_an_approved_run() -> None:
    row = incident("diagnosed")
    with pytest.raises(IllegalTransition, match="needs an approved playbook run"):
        lifecycle.fire(row, "start_mitigation", now=NOW)
    lifecycle.fire(row, "start_mitigation", now=NOW, facts={"approved_run": 3})
    assert row.state == "mitigating"


def test_entering_a_stage_stamps_it_once() -> None:
    row = incident("mitigating")
    row.diagnosed_at = NOW
    later = datetime(2026, 11, 25, 3, 9, tzinfo=timezone.utc)
    lifecycle.fire(row, "mitigation_failed", now=later)
    assert row.diagnosed_at == NOW  # the first diagnosis is the fact the clock counts
    lifecycle.fire(row, "mark_mitigated", now=later)
    assert row.mitigated_at == later


def test_reopening_clears_the_resolution_but_keeps_earlier_stages() -> None:
    row = incident("mitigated")
    row.mitigated_at = NOW
    lifecycle.fire(row, "resolve", now=NOW)
    assert row.resolved_at == NOW
    lifecycle.fire(row, "reopen", now=NOW)
    assert row.resolved_at is None and row.mitigated_at == NOW
