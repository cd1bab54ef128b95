"""`/incident export` in chat, `incident-bot export` on the command line, GET …/export over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.chat.memory import MemoryChat
from bot.compose.cli.main import main
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.domain.export import export_incident
from tests.export import scenarios


def test_chat_answers_a_short_markdown_export_inline(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.cancelled(chat, clock)
    answer = chat.say("carol", "/incident export")
    first, *rest = answer.splitlines()
    assert first == "Post-mortem of INC-1 (Markdown)"
    assert "    # INC-1 post-mortem: apiserver latency spike" in rest
    assert "    **1 met, 0 breached, 2 never reached.**" in rest


def test_chat_answers_a_long_or_binary_export_with_the_verdict_and_where_to_fetch_it(
        chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.breached(chat, clock)
    answer = chat.say("bob", "/incident export INC-1 --format html --tz Europe/Berlin")
    assert answer.splitlines()[:4] == [
        "INC-1 post-mortem: etcd fsync latency (sev2, cluster prod-2, resolved)",
        "  Clocks (1-5-10):",
        "    ✓ Discover & announce: notified after 0s (budget 1m00s): met",
        "    ✗ Locate the root cause: diagnosed after 7m00s (budget 5m00s): breached by 2m00s",
    ]
    assert "  • GET /api/incidents/INC-1/export?format=html&tz=Europe/Berlin on the bot's HTTP endpoint" in answer
    assert "  • incident-bot export INC-1 --format html --tz Europe/Berlin -o INC-1-postmortem.html" in answer
    bot.settings.export.public_url = "https://incident-bot.example.org/"
    answer = chat.say("bob", "/incident export --format json")
    assert "  • https://incident-bot.example.org/api/incidents/INC-1/export?format=json" in answer


def test_chat_refuses_bad_options_in_one_line(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.cancelled(chat, clock)
    assert chat.say("carol", "/incident export --format pdf") == (
        "`--format` must be one of md, json, html, not `pdf`. Usage: /incident export [INC] "
        "[--format md|json|html] [--tz ZONE]")
    assert chat.say("carol", "/incident export --tz Nowhere/Land") == (
        "`Nowhere/Land` is not a time zone; expected an IANA name such as Europe/Berlin, America/New_York or UTC.")
    assert chat.say("carol", "/incident export INC-9") == "there is no incident INC-9."


@pytest.fixture
def http(bot: Bot) -> TestClient:
    return TestClient(build_http_app(bot))


def test_http_serves_each_format_with_its_content_type(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                      http: TestClient) -> None:
    scenarios.all_met(chat, clock)
    md = http.get("/api/incidents/INC-1/export")
    assert md.status_code == 200 and md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.text == export_incident(bot.db, bot.settings, "INC-1", fmt="md").content
    js = http.get("/api/incidents/1/export", params={"format": "json"})
    assert js.status_code == 200 and js.headers["content-type"] == "application/json"
    assert js.json()["incident"]["ref"] == "INC-1"
    html = http.get("/api/incidents/INC-1/export", params={"format": "html", "tz": "Europe/Berlin"})
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"
    assert "times in Europe/Berlin" in html.text
    assert 'filename="INC-1-postmortem.html"' in html.headers["content-disposition"]


def test_http_answers_bad_requests_with_a_sentence(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                   http: TestClient) -> None:
    scenarios.cancelled(chat, clock)
    for url, status, error in (
        ("/api/incidents/INC-42/export?format=md", 404, "there is no incident INC-42."),
        ("/api/incidents/INC-1/export?format=docx", 400, "format must be one of md, json, html, not `docx`."),
        ("/api/incidents/INC-1/export?tz=Not/AZone", 400,
         "`Not/AZone` is not a time zone; expected an IANA name such as Europe/Berlin, America/New_York or UTC."),
        ("/api/incidents/banana/export", 400,
         "`banana` is not an incident reference; expected INC-<number>, e.g. INC-42."),
    ):
        response = http.get(url)
        assert (response.status_code, response.json()) == (status, {"error": error}), url


def test_cli_writes_to_stdout_or_a_file(chat: MemoryChat, bot: Bot, clock: FakeClock, settings: Settings,
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenarios.breached(chat, clock)
    db = ["--database-url", settings.database_url]
    assert main([*db, "export", "INC-1"]) == 0
    out = capsys.readouterr().out
    assert out == export_incident(bot.db, bot.settings, "INC-1", fmt="md").content
    target = tmp_path / "INC-1.json"
    assert main([*db, "export", "INC-1", "--format", "json", "--tz", "Europe/Berlin", "-o", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"wrote {target} (")
    assert "diagnosed after 7m00s (budget 5m00s): breached by 2m00s" in captured.err
    doc = json.loads(target.read_text())
    assert doc["export"]["timezone"] == "Europe/Berlin"
    assert doc["incident"]["times"]["started_at"] == "2026-11-25T04:00:00+01:00"
    html = tmp_path / "INC-1.html"
    assert main([*db, "export", "INC-1", "--format", "html", "-o", str(html)]) == 0
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_cli_bad_input_is_one_line_and_exit_2(chat: MemoryChat, bot: Bot, clock: FakeClock, settings: Settings,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    scenarios.cancelled(chat, clock)
    db = ["--database-url", settings.database_url]
    for argv, message in (
        (["export", "INC-1", "--format", "pdf"], "incident-bot: format must be one of md, json, html, not `pdf`.\n"),
        (["export", "INC-7"], "incident-bot: there is no incident INC-7.\n"),
        (["export", "INC-1", "--tz", "Moon/Base"], "incident-bot: `Moon/Base` is not a time zone; expected an IANA "
                                                  "name such as Europe/Berlin, America/New_York or UTC.\n"),
        (["export", "INC-1", "--generated-at", "yesterday"],
         "incident-bot: --generated-at: `yesterday` is not an ISO 8601 time, e.g. 2026-11-25T09:00:00Z.\n"),
    ):
        assert main([*db, *argv]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", message)
