"""The 1-5-10 across incidents: per-stage median and p90 from T0, compliance, breaches, drills apart."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.chat.memory import MemoryChat
from bot.compose.cli.main import main
from bot.core.clock import FakeClock
from bot.domain.export import report_render
from bot.core.store.models import Incident
from tests.export import scenarios

API_TOKEN = "report-token-0123456789"


def history(bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    """Three real incidents (all met; two breaches; a false positive) and one drill."""
    scenarios.all_met(chat, clock)      # INC-1 prod-1: 0s / 3m / 8m
    scenarios.breached(chat, clock)     # INC-2 prod-2: 0s / 7m / 12m
    scenarios.cancelled(chat, clock)    # INC-3 default: cancelled after 2m
    chat.say("dave", "/incident declare etcd-member-down drill --cluster sandbox")  # INC-4
    with bot.db.session() as s:
        drill = s.get(Incident, 4)
        assert drill is not None
        drill.is_drill = True
        s.add(drill)
    clock.advance(20)
    chat.say("dave", "/incident cause etcd member 3 stopped")
    chat.say("alice", "/incident action add an fsync alert @dave due 2026-11-30 p1 INC-2")


def report(bot: Bot, **kw: str) -> dict:  # type: ignore[type-arg]
    with bot.db.session() as session:
        _, _, tree = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="json", **kw)
    return tree


def test_medians_p90_and_compliance_per_stage(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    history(bot, chat, clock)
    tree = report(bot, since="30d")
    assert tree["incidents"] == {"total": 4, "real": 3, "drills": 1}
    s = tree["stages"]
    assert (s["notify"]["median_seconds"], s["notify"]["p90_seconds"], s["notify"]["met_ratio"]) == (0, 0, 1.0)
    # the false positive was never diagnosed and does not count against the budget
    assert (s["diagnose"]["median_seconds"], s["diagnose"]["p90_seconds"], s["diagnose"]["met_ratio"]) == (300, 420, 0.5)
    assert (s["mitigate"]["median_seconds"], s["mitigate"]["p90_seconds"], s["mitigate"]["met_ratio"]) == (600, 720, 0.5)
    assert tree["milestones"]["detect"]["median_seconds"] == 0
    assert tree["breaches"]["by_cluster"] == [{"cluster": "prod-2", "count": 1}]
    assert tree["breaches"]["by_cause"] == [{"cause": "etcd member 2 on a throttled disk", "count": 1}]
    assert tree["breaches"]["by_stage"] == [{"stage": "diagnose", "count": 1}, {"stage": "mitigate", "count": 1}]
    assert tree["all_three_met"] == 1
    # the drill is reported apart
    assert tree["drills"]["count"] == 1 and tree["drills"]["stages"]["diagnose"]["median_seconds"] == 20
    assert [a["text"] for a in tree["open_action_items"]] == ["add an fsync alert", "alert on LIST latency per user"]
    assert report(bot, since="30d", cluster="prod-1")["incidents"] == {"total": 1, "real": 1, "drills": 0}


def test_markdown_and_html_say_the_same(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    history(bot, chat, clock)
    with bot.db.session() as session:
        md, _, _ = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="md")
        page, media, _ = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="html")
    assert "| Locate the root cause (5 min) |" not in md  # titles are the report's own
    assert "| Root cause (5 min) | 5m00s | 7m00s | 5m00s | 50 % (1/2) | 1 |" in md
    assert "## Drills: 1 incident" in md and "Breaches by cluster: prod-2 1." in md
    assert media.startswith("text/html")
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="report-chart"') == 2  # real incidents and drills
    assert "<script" not in page and "50 % (1/2)" in page


def test_the_api_report_needs_the_token_and_names_bad_input(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    history(bot, chat, clock)
    bot.settings.api_token = SecretStr(API_TOKEN)
    client = TestClient(build_http_app(bot))
    assert client.get("/api/report").status_code == 401
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    answer = client.get("/api/report?since=7d", headers=auth)
    assert answer.status_code == 200
    assert answer.json()["stages"]["diagnose"]["met_ratio"] == 0.5
    bad = client.get("/api/report?since=lastweek", headers=auth)
    assert bad.status_code == 400
    assert bad.json() == {"error": "--since `lastweek` is neither an age (30m, 24h, 7d, 2w) nor a date (YYYY-MM-DD)."}
    assert client.get("/api/report?format=pdf", headers=auth).json() == {
        "error": "format must be one of md, json, html, not `pdf`."}


def test_the_cli_report(chat: MemoryChat, bot: Bot, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    history(bot, chat, clock)
    assert main(["--database-url", bot.settings.database_url, "report", "--since", "2026-11-01", "--format", "json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["incidents"]["real"] == 3 and tree["stages"]["mitigate"]["p90_seconds"] == 720
    assert main(["--database-url", bot.settings.database_url, "report", "--since", "soon"]) == 2
    assert capsys.readouterr().err == ("incident-bot: --since `soon` is neither an age (30m, 24h, 7d, 2w) nor a date "
                                       "(YYYY-MM-DD).\n")
