"""Fault drills end to end: inject -> detect -> diagnose -> propose -> auto-approve -> recover -> verify.

Each drill starts its own sandbox (real etcd x3, apiserver stand-ins behind
real HAProxy, real Prometheus with the shipped fast rules, real Alertmanager,
the bot in-process), breaks it, and lets the bot's own pipeline do the rest.
With 1-second scrape and evaluation intervals the sandbox's goals are:
notified within 5 s of the fault, diagnosed within 15 s, mitigated within 60 s.
After the drill no process and no directory of the sandbox is left.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.sandbox.drill import Deadlines, Drill, DrillResult
from bot.sandbox.sandbox import processes_under
from bot.sandbox.scorecard import SANDBOX_GOALS

# how long a test waits before calling a stage missed: generous, the goals are what is asserted
DEADLINES = Deadlines(notify=30, diagnose=60, mitigate=120, snapshot=60)


def rehearse(name: str, out: Path) -> DrillResult:
    result = Drill(name, out_dir=out, deadlines=DEADLINES, echo=lambda line: None).run()
    print(result.scorecard.render())
    return result


def assert_left_nothing(result: DrillResult) -> None:
    root = result.sandbox_root
    assert root is not None
    assert not root.exists(), f"the sandbox directory {root} is left behind"
    assert processes_under(root) == [], f"processes of the sandbox {root} are left running"


def assert_goals_met(result: DrillResult, *, mitigated: bool) -> None:
    stages = {s.name: s for s in result.scorecard.stages}
    assert stages["notify"].elapsed is not None and stages["notify"].elapsed <= SANDBOX_GOALS["notify"]
    assert stages["diagnose"].elapsed is not None and stages["diagnose"].elapsed <= SANDBOX_GOALS["diagnose"]
    if mitigated:
        assert stages["mitigate"].elapsed is not None and stages["mitigate"].elapsed <= SANDBOX_GOALS["mitigate"]
    else:
        assert stages["mitigate"].verdict == "n/a"
    # the bot's own share of notifying is small next to waiting for Prometheus and Alertmanager
    assert stages["notify"].bot_seconds is not None and stages["notify"].bot_seconds < 1.0


def assert_reports_written(result: DrillResult, scenario: str) -> None:
    out = result.out_dir
    card = (out / "scorecard.txt").read_text()
    assert f"Drill {scenario}" in card and "PASSED" in card
    data = json.loads((out / "scorecard.json").read_text())
    assert data["passed"] is True and [s["name"] for s in data["stages"]] == ["notify", "diagnose", "mitigate"]
    md = (out / "postmortem.md").read_text()
    assert result.scorecard.incident in md and "drill.fault" in md and "drill.verified" in md
    html = (out / "postmortem.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "<svg" in html
    assert "📣" in (out / "chat.txt").read_text()  # the announcement reached the (transcript) chat


def test_one_etcd_member_down_is_escalated_to_a_person(tmp_path: Path) -> None:
    result = rehearse("etcd-member-down", tmp_path / "member-down")

    assert result.passed, result.scorecard.failures
    assert result.scorecard.is_drill is True
    assert "escalated" in result.scorecard.outcome
    assert "quorum held" in result.scorecard.verification
    assert_goals_met(result, mitigated=False)
    assert_reports_written(result, "etcd-member-down")
    assert_left_nothing(result)


def test_main_apiservers_down_fail_over_to_the_bypass(tmp_path: Path) -> None:
    result = rehearse("apiserver-down", tmp_path / "apiserver-down")

    assert result.passed, result.scorecard.failures
    assert result.scorecard.is_drill is True and result.scorecard.auto_approved is True
    assert "failover-apiserver" in result.scorecard.outcome
    assert "reach the bypass apiserver" in result.scorecard.verification
    assert_goals_met(result, mitigated=True)
    assert_reports_written(result, "apiserver-down")
    assert "auto" in (result.out_dir / "postmortem.md").read_text().lower()
    assert_left_nothing(result)


def test_a_flooding_client_is_throttled(tmp_path: Path) -> None:
    result = rehearse("client-flood", tmp_path / "client-flood")

    assert result.passed, result.scorecard.failures
    assert result.scorecard.is_drill is True and result.scorecard.auto_approved is True
    assert "throttle-client" in result.scorecard.outcome
    assert "no longer in service-accounts" in result.scorecard.verification
    assert_goals_met(result, mitigated=True)
    assert_reports_written(result, "client-flood")
    assert_left_nothing(result)


def test_etcd_quorum_loss_is_restored_from_the_snapshot(tmp_path: Path) -> None:
    result = rehearse("etcd-quorum-loss", tmp_path / "quorum-loss")

    assert result.passed, result.scorecard.failures
    assert result.scorecard.is_drill is True and result.scorecard.auto_approved is True
    assert "restore-etcd" in result.scorecard.outcome
    assert "all 20 seeded keys back" in result.scorecard.verification
    assert_goals_met(result, mitigated=True)
    assert_reports_written(result, "etcd-quorum-loss")
    assert_left_nothing(result)
