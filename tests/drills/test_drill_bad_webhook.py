"""The bad-webhook drill end to end on the real kube-apiservers.

A ``ValidatingWebhookConfiguration`` with ``failurePolicy: Fail`` whose backend is a loopback port
nobody listens on refuses ConfigMap writes. The bot's write probe fails, the change watch has seen
the configuration appear, the diagnosis concludes from that change and the apiserver's refusal,
``disable-webhook`` runs (auto-approved on a drill) and the drill writes through the real
apiservers again. Timings are measured on the scorecard, not asserted.
"""

from __future__ import annotations

from pathlib import Path

from tests.drills.test_drills import (assert_left_nothing, assert_real_components, assert_reports_written,
                                      assert_within_budgets, rehearse)


def test_a_webhook_whose_backend_is_down_is_found_by_its_change_and_set_to_ignore(tmp_path: Path) -> None:
    result = rehearse("bad-webhook", tmp_path / "bad-webhook")

    assert result.passed, result.scorecard.failures
    assert "disable-webhook" in result.scorecard.outcome
    assert "writes succeed again through the kube-apiservers" in result.scorecard.verification
    assert "failurePolicy Ignore" in result.scorecard.verification
    assert_within_budgets(result, mitigated=True)
    assert_real_components(result)
    assert_reports_written(result, "bad-webhook")
    md = (result.out_dir / "postmortem.md").read_text()
    changed = md.split("## Changed before T0", 1)[1].split("## Evidence at T0", 1)[0]
    assert "ValidatingWebhookConfiguration | policy-engine-" in changed and "| created | watch |" in changed
    assert "cannot call admission webhook validate.policy-engine-" in md  # the cause, from the refusal
    evidence = md.split("## Evidence at T0", 1)[1]
    assert "| readyz | ok |" in evidence and "| etcd | ok |" in evidence and "| apf | ok |" in evidence
    assert_left_nothing(result)
