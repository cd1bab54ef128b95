"""The Prometheus rules and Alertmanager receiver shipped in deploy/ are valid and fit the bot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from bot.core.config.detection import Alerting
from bot.domain.incidents.alert_rules import classify

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
FAST = DEPLOY / "prometheus" / "rules-fast.yml"


def run(*args: str | Path, cwd: Path | None = None) -> str:
    res = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert res.returncode == 0, f"{args[0]} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


def rules(path: Path) -> dict[str, dict]:
    return {r["alert"]: r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]}


def test_promtool_accepts_both_rule_files_and_the_example_config() -> None:
    out = run("promtool", "check", "rules", RULES, FAST)
    assert out.count("SUCCESS") == 2
    run("promtool", "check", "config", "--syntax-only", DEPLOY / "prometheus" / "prometheus.yml")


def test_the_rules_behave_as_their_unit_tests_say() -> None:
    assert "SUCCESS" in run("promtool", "test", "rules", "rules_test.yml", cwd=DEPLOY / "prometheus")


def test_the_sandbox_sees_a_flood_at_its_first_scraped_rejections_and_ignores_a_few() -> None:
    assert "SUCCESS" in run("promtool", "test", "rules", "rules_fast_test.yml", cwd=DEPLOY / "prometheus")


def test_the_slo_burn_rate_alerts_page_on_fast_burn_and_ticket_on_slow_burn() -> None:
    assert "SUCCESS" in run("promtool", "test", "rules", "rules_slo_test.yml", cwd=DEPLOY / "prometheus")


def test_while_etcd_has_lost_quorum_flood_alerts_are_held_back_in_the_deployment_and_the_sandbox() -> None:
    from bot.compose.sandbox.controlplane import INHIBIT_RULES

    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    assert config["inhibit_rules"] == [dict(r) for r in INHIBIT_RULES]
    (rule,) = config["inhibit_rules"]
    fast = rules(FAST)
    sources = [n for n in fast if n in ("EtcdInsufficientMembers", "EtcdNoLeader")]
    targets = sorted(n for n, r in fast.items() if r["labels"].get("playbook") == "throttle-client")
    assert sorted(sources) == ["EtcdInsufficientMembers", "EtcdNoLeader"]  # the source alerts exist
    assert "KubeAPIFlowControlRejections" in targets and rule["equal"] == ["cluster"]


def test_amtool_accepts_the_receiver_which_points_at_the_bot_with_a_bearer_token() -> None:
    run("amtool", "check-config", DEPLOY / "alertmanager" / "alertmanager.yml")
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    (receiver,) = config["receivers"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"].endswith("/webhooks/alertmanager") and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert config["route"]["receiver"] == receiver["name"]


def test_every_rule_names_its_component_and_severity_and_classifies_as_it_says() -> None:
    shipped = rules(RULES)
    for must in ("EtcdMemberDown", "EtcdInsufficientMembers", "EtcdNoLeader", "EtcdHighFsyncDurations",
                 "EtcdHighCommitDurations", "EtcdDatabaseQuotaLowSpace", "KubeAPIDown", "KubeAPIErrorRatioHigh",
                 "KubeAPIThrottlingHigh", "KubeAPIFlowControlRejections", "KubeAPITerminatedRequests",
                 "PodCreationBudgetBurnFast", "PodCreationBudgetBurnSlow", "ControlPlaneAvailabilityBudgetBurnFast",
                 "APILatencyBudgetBurnFast"):
        assert must in shipped
    for name, rule in shipped.items():
        labels = rule["labels"]
        assert labels["severity"] in ("critical", "warning"), name
        assert labels["component"] in ("etcd", "apiserver", "workloads"), name
        got = classify({"alertname": name, **labels}, Alerting())
        assert got.component == labels["component"]
        assert got.severity == {"critical": "sev1", "warning": "sev2"}[labels["severity"]]


def test_the_fast_variant_is_generated_from_the_rules(tmp_path: Path) -> None:
    target = tmp_path / "fast.yml"
    run(sys.executable, DEPLOY / "prometheus" / "make_fast_rules.py", RULES, target)
    assert target.read_text() == FAST.read_text(), "rules-fast.yml is stale: run make_fast_rules.py"
    fast = rules(FAST)
    assert fast.keys() == rules(RULES).keys()
    # every fast rule waits one evaluation, but the rejections: a flood is announced from its first scrape
    assert {name: r["for"] for name, r in fast.items() if r["for"] != "1s"} == {"KubeAPIFlowControlRejections": "0s"}
