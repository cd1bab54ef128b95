"""The mass-delete drill on real kube-apiservers: the admission guard stops a runaway client at the threshold.

A janitor process deletes 300 Pods (API objects; no kubelet) as its own user. The bot's validating
webhook, called by the real apiservers over mutual TLS, lets 100 through and denies the rest; the
incident opens at the first delete, is diagnosed "mass deletion by <janitor>", and throttle-client
throttles the janitor. How fast is measured (docs/admission-guard.md), never asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.compose.sandbox.guard_setup import JANITOR_USER
from tests.drills.test_drills import (
    assert_left_nothing,
    assert_reports_written,
    assert_within_budgets,
    rehearse,
)


def test_a_mass_deletion_is_stopped_at_the_threshold_and_the_client_throttled(tmp_path: Path) -> None:
    result = rehearse("mass-delete", tmp_path / "mass-delete")
    assert result.passed, result.scorecard.failures
    assert_within_budgets(result, mitigated=True)
    assert_reports_written(result, "mass-delete")
    card = json.loads((result.out_dir / "scorecard.json").read_text())
    measured = card["measurements"]
    # the goal (no more than the threshold) is reported, not asserted: a review not answered within the webhook's
    # timeout on an overloaded machine is allowed (failurePolicy Ignore); the mass deletion is still stopped
    assert measured["threshold"] == 100 and measured["pods_deleted_goal"] in ("met", "missed")
    assert measured["pods_deleted"] <= 200 and measured["mass_delete"]["deletes_denied"] >= 100
    postmortem = (result.out_dir / "postmortem.md").read_text()
    assert f"mass deletion by {JANITOR_USER.name}" in postmortem
    assert "admission guard: mass-deletion breaker tripped on sandbox" in postmortem
    assert "admission guard denied" in postmortem  # the denials, batched on the timeline
    assert_left_nothing(result)
