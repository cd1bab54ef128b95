"""The scheduler-down drill on the sandbox's customer cluster (real kube-scheduler, kube-controller-manager
and kwok hollow nodes): the pod probe sees pods stay Pending while every apiserver is ready, diagnosis
reads the scheduler's stale leader Lease, and restart-component brings a new leader; the drill verifies
through the apiserver that a new pod is scheduled and runs.

One drill test only (each starts its own sandbox); nodes-not-ready runs with `incident-bot drill`.
"""

from __future__ import annotations

from pathlib import Path

from tests.drills.test_drills import assert_left_nothing, assert_reports_written, assert_within_budgets, rehearse


def test_a_frozen_scheduler_is_found_by_the_pod_probe_and_restarted(tmp_path: Path) -> None:
    result = rehearse("scheduler-down", tmp_path / "scheduler-down")

    assert result.passed, result.scorecard.failures
    assert "restart-component" in result.scorecard.outcome
    assert "a new pod ran through the real scheduler and a hollow node" in result.scorecard.verification
    assert_within_budgets(result, mitigated=True)
    assert_reports_written(result, "scheduler-down")
    md = (result.out_dir / "postmortem.md").read_text()
    assert "pod not scheduled within" in md, "the pod probe's evidence names the stage the pod stuck in"
    assert "kube-scheduler does not lead" in md
    assert_left_nothing(result)
