"""The bot's own alerts and the Grafana dashboard: promtool checks every rule and every panel query."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from tests.deploy.test_metrics import scrape

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "helm" / "incident-bot" / "files" / "incident-bot-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "incident-bot.json"
# Grafana's variables, replaced by what they stand for so that promtool can parse the query
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1d", "$__interval": "1m", "$cluster": ".*"}


def promtool(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def panel_queries() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out[f"{panel['title']} ({target['refId']})"] = target["expr"]
    return out


def concrete(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", ALERTS)
    assert "SUCCESS" in promtool("test", "rules", "incident-bot-alerts_test.yml", cwd=DEPLOY / "prometheus")


def test_the_alerts_cover_what_the_issue_asks_for() -> None:
    names = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    assert {"IncidentBotOutboxStuck", "IncidentBotWebhookFailures", "IncidentBotBreachRate",
            "IncidentBotNoReadyReplica"} <= names


def test_every_panel_query_parses_with_promtool(tmp_path: Path) -> None:
    queries = panel_queries()
    assert len(queries) >= 15
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{i}", "expr": concrete(expr)} for i, expr in enumerate(queries.values())]}]}
    file = tmp_path / "dashboard-queries.yml"
    file.write_text(yaml.safe_dump(rules))
    assert f"SUCCESS: {len(queries)} rules found" in promtool("check", "rules", file)


def test_every_metric_a_panel_or_alert_reads_is_one_the_bot_exposes(chat: MemoryChat, bot: Bot,
                                                                    clock: FakeClock) -> None:
    chat.say("alice", "/incident declare apiserver 5xx --severity sev1 --cluster prod-1")
    clock.advance(700)
    chat.pump()
    text, _ = scrape(bot)
    exposed = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.M))
    names = {n for n, _ in exposed} | {f"{n}{s}" for n, kind in exposed if kind in ("histogram", "counter")
                                       for s in ("_bucket", "_count", "_sum", "_total")}
    used = set()
    for expr in [*panel_queries().values(),
                 *(r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"])]:
        used |= set(re.findall(r"\b((?:incident_bot|process)_\w+)", expr))
    assert used and used <= names, f"not exposed by /metrics: {sorted(used - names)}"


def test_the_dashboard_shows_the_1_5_10_against_its_budgets() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for words in ("5-minute diagnosed budget", "10-minute mitigated budget", "breaches", "Open incidents by state",
                  "Outbox backlog", "Playbook runs"):
        assert words in titles
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"] if p["type"] != "row")
