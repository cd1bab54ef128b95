"""Fault drills end to end: inject -> detect -> diagnose -> propose -> auto-approve -> recover -> verify.

Each drill starts its own sandbox (real etcd 3.6 x3, two main and one bypass kube-apiserver
behind real HAProxy, real Prometheus with the shipped fast rules, real Alertmanager, the bot
in-process), breaks it, and lets the bot's own pipeline do the rest. The tests assert what
happened and that every stage came within the incident's 1-5-10 budget; how fast (the sandbox's
goals of 3 / 15 / 30 s) is measured by ``benchmarks/drills.py``, never asserted here.
After the drill no process and no directory of the sandbox is left.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.compose.sandbox.drill import Deadlines, Drill, DrillResult
from bot.compose.sandbox.sandbox import processes_under

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


def assert_within_budgets(result: DrillResult, *, mitigated: bool) -> None:
    stages = {s.name: s for s in result.scorecard.stages}
    for name in ("notify", "diagnose"):
        assert stages[name].elapsed is not None and stages[name].elapsed <= stages[name].budget
        assert stages[name].bot_seconds is not None and stages[name].waiting_seconds is not None
    if mitigated:
        assert stages["mitigate"].elapsed is not None and stages["mitigate"].elapsed <= stages["mitigate"].budget
    else:
        assert stages["mitigate"].verdict == "n/a"


def assert_real_components(result: DrillResult) -> None:
    data = json.loads((result.out_dir / "scorecard.json").read_text())
    versions = {(c["component"], c["name"]): c["version"] for c in data["components"]}
    assert versions[("kube-apiserver", "main-1")].startswith("v1.") and ("kube-apiserver", "bypass-1") in versions
    assert versions[("etcd", "m1")].startswith("3.6")
    assert {"haproxy", "prometheus", "alertmanager"} <= {c for c, _ in versions}


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
    assert_within_budgets(result, mitigated=False)
    assert_real_components(result)
    assert_reports_written(result, "etcd-member-down")
    assert_left_nothing(result)


def test_main_apiservers_down_fail_over_to_the_bypass(tmp_path: Path) -> None:
    result = rehearse("apiserver-down", tmp_path / "apiserver-down")

    assert result.passed, result.scorecard.failures
    assert result.scorecard.is_drill is True and result.scorecard.auto_approved is True
    assert "failover-apiserver" in result.scorecard.outcome
    assert "served by the bypass kube-apiserver bypass-1" in result.scorecard.verification
    assert_within_budgets(result, mitigated=True)
    assert_real_components(result)
    assert_reports_written(result, "apiserver-down")
    assert "auto" in (result.out_dir / "postmortem.md").read_text().lower()
    assert_left_nothing(result)


def test_a_flooding_client_is_throttled(tmp_path: Path) -> None:
    result = rehearse("client-flood", tmp_path / "client-flood")

    assert result.passed, result.scorecard.failures
    assert result.scorecard.is_drill is True and result.scorecard.auto_approved is True
    assert "throttle-client" in result.scorecard.outcome
    assert "no longer in service-accounts" in result.scorecard.verification
    measured = result.scorecard.measurements
    assert measured["flood_during"]["rejected_429"] > 0  # the real APF rejected the flood
    assert measured["bystander_after"]["ok"] == measured["bystander_after"]["requests"] > 0
    assert_within_budgets(result, mitigated=True)
    assert_real_components(result)
    assert_reports_written(result, "client-flood")
    assert_left_nothing(result)


def test_etcd_quorum_loss_is_restored_from_the_snapshot(tmp_path: Path) -> None:
    result = rehearse("etcd-quorum-loss", tmp_path / "quorum-loss")

    assert result.passed, result.scorecard.failures
    assert result.scorecard.is_drill is True and result.scorecard.auto_approved is True
    assert "restore-etcd" in result.scorecard.outcome
    assert "all 20 seeded keys back" in result.scorecard.verification
    assert "every main kube-apiserver ready and all 10 ConfigMaps" in result.scorecard.verification
    assert_within_budgets(result, mitigated=True)
    assert_real_components(result)
    assert_reports_written(result, "etcd-quorum-loss")
    assert_left_nothing(result)
