"""/metrics as Prometheus and a Grafana dashboard read it: the 1-5-10 stages, breaches, outbox, requests."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock


def scrape(bot: Bot) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with TestClient(build_http_app(bot)) as client:
        text = client.get("/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return text, samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples[(name, tuple(sorted(labels.items())))]


def test_an_incident_s_stages_land_in_the_budget_buckets(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare apiserver 5xx --severity sev1 --cluster prod-1")  # notified at once
    clock.advance(200)
    chat.say("alice", "/incident cause a CI robot lists all pods")  # diagnosed after 200 s: within 5 min
    clock.advance(500)
    chat.pump()  # 700 s without mitigation: the watcher records the 10-minute breach
    chat.say("alice", "/incident mitigated")
    _, samples = scrape(bot)
    sev1 = {"severity": "sev1", "cluster": "prod-1"}
    assert value(samples, "incident_bot_stage_seconds_bucket", stage="notified", le="60.0", **sev1) == 1
    assert value(samples, "incident_bot_stage_seconds_bucket", stage="diagnosed", le="180.0", **sev1) == 0
    assert value(samples, "incident_bot_stage_seconds_bucket", stage="diagnosed", le="300.0", **sev1) == 1
    assert value(samples, "incident_bot_stage_seconds_bucket", stage="mitigated", le="600.0", **sev1) == 0
    assert value(samples, "incident_bot_stage_seconds_bucket", stage="mitigated", le="900.0", **sev1) == 1
    assert value(samples, "incident_bot_stage_seconds_sum", stage="mitigated", **sev1) == 700
    assert value(samples, "incident_bot_slo_breaches_total", stage="mitigated", **sev1) == 1
    assert value(samples, "incident_bot_slo_breaches_total", stage="notified", **sev1) == 0  # exposed before any
    assert value(samples, "incident_bot_incidents", state="mitigated", severity="sev1") == 1


def test_the_outbox_backlog_and_its_oldest_message_age(bot: Bot, clock: FakeClock) -> None:
    bot.services.incidents.declare("etcd slow", actor="alice")  # announcement and page wait in the outbox
    clock.advance(90)
    _, samples = scrape(bot)
    assert value(samples, "incident_bot_outbox_backlog", channel="chat") >= 1
    assert value(samples, "incident_bot_outbox_oldest_pending_age_seconds", channel="chat") == 90


def test_build_info_process_metrics_and_webhook_outcomes(bot: Bot) -> None:
    with TestClient(build_http_app(bot)) as client:
        client.post("/webhooks/alertmanager", content=b"{}", headers={"Authorization": "Bearer wrong"})
    text, samples = scrape(bot)
    assert any(name == "incident_bot_build_info" for name, _ in samples)
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)
    assert value(samples, "incident_bot_webhook_requests_total", outcome="unauthorized") >= 1
    assert "# TYPE incident_bot_stage_seconds histogram" in text


def test_promtool_finds_nothing_to_fix(chat: MemoryChat, bot: Bot) -> None:
    chat.say("alice", "/incident declare apiserver 5xx --severity sev1 --cluster prod-1")
    text, _ = scrape(bot)
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""
