"""The scheduler-down drill on the sandbox's customer cluster (real kube-scheduler, kube-controller-manager
and kwok hollow nodes): the pod probe sees pods stay Pending while every apiserver is ready, diagnosis
reads the scheduler's stale leader Lease, and restart-component brings a new leader; the drill verifies
through the apiserver that a new pod is scheduled and runs.

And nodes-not-ready: half of the hollow nodes stop renewing their Leases; the node probe sees them
NotReady, diagnosis sees the control plane leading and escalates the silent nodes as node-side; the
drill verifies the NotReady reason and the expired Leases. Each drill starts its own sandbox.
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
    assert "a probe pod just now: pod probe FAILS" in md, "the diagnosis ran a probe pod of its own"
    assert_left_nothing(result)


def test_nodes_that_stop_renewing_their_leases_are_escalated_as_node_side(tmp_path: Path) -> None:
    result = rehearse("nodes-not-ready", tmp_path / "nodes-not-ready")

    assert result.passed, result.scorecard.failures
    assert "(NodeStatusUnknown, their Leases expired)" in result.scorecard.verification
    assert "Ready with fresh Leases, the scheduler kept leading" in result.scorecard.verification
    assert_within_budgets(result, mitigated=False)
    md = (result.out_dir / "postmortem.md").read_text()
    assert "node-side: 10 of 20 nodes stopped heartbeating" in md
    assert_left_nothing(result)
