"""The report shows what customers felt: the error budget left per cluster and objective.

Probe outcomes go through the prober's own recorder (so they are stored as the running bot stores
them); the report (JSON, Markdown, HTML) and `/incident slo` then show the same figures, computed
from those stored tallies over the report's window.
"""

from __future__ import annotations

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.export import report_render
from bot.domain.incidents.probe_findings import ProbeRecorder
from integrations.clients.probes import ProbeOutcome

NS = "incident-bot-probe"
POD, READYZ, WRITE = f"pod {NS}", "apiserver https://10.0.0.10:6443/readyz", f"write-path {NS}"


def probe_history(bot: Bot, clock: FakeClock) -> None:
    """prod-1: 200 rounds; one pod not scheduled, one pod slow (6 s), one slow write (1.5 s). prod-2: all good."""
    recorder = ProbeRecorder(bot.db, bot.settings, bot.clock, bot.services.incidents)
    for i in range(200):
        outcomes = [
            ProbeOutcome("prod-1", POD, "workloads", i != 50, 6000.0 if i == 120 else 150.0,
                         "pod not scheduled within 19 s" if i == 50 else "running 150 ms"),
            ProbeOutcome("prod-1", READYZ, "apiserver", True, 4.0, "200"),
            ProbeOutcome("prod-1", WRITE, "apiserver", True, 1500.0 if i == 70 else 20.0, "writes succeed"),
        ]
        if i < 10:
            outcomes.append(ProbeOutcome("prod-2", POD, "workloads", True, 180.0, "running 180 ms"))
        recorder.record(outcomes)
        clock.advance(10)


def test_the_report_shows_the_budget_left_per_cluster_and_objective(bot: Bot, clock: FakeClock) -> None:
    probe_history(bot, clock)
    with bot.db.session() as session:
        _, _, tree = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="json",
                                                    since="30d")
    rows = {(b["cluster"], b["objective"]): b for b in tree["error_budgets"]}
    assert sorted(rows) == [("prod-1", "api-latency"), ("prod-1", "availability"), ("prod-1", "pod-creation"),
                            ("prod-1", "pod-latency"), ("prod-2", "pod-creation"), ("prod-2", "pod-latency")]
    creation = rows[("prod-1", "pod-creation")]
    # 1 bad of 200 against 99.9 %: 0.5 % bad where 0.1 % is allowed, the budget overspent five times
    assert (creation["events"], creation["bad"], creation["good_ratio"], creation["budget_left"]) == (200, 1, 0.995, -4.0)
    latency = rows[("prod-1", "pod-latency")]
    assert (latency["bad"], latency["budget_left"]) == (2, 0.0), "the failed pod and the slow one; 1 % allowed"
    api = rows[("prod-1", "api-latency")]
    assert (api["events"], api["bad"], api["budget_left"]) == (200, 1, 0.5)
    assert rows[("prod-1", "availability")]["budget_left"] == 1.0
    assert rows[("prod-2", "pod-creation")]["budget_left"] == 1.0 and rows[("prod-2", "pod-creation")]["events"] == 10

    with bot.db.session() as session:
        only = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="json",
                                              since="30d", cluster="prod-2")[2]
    assert {b["cluster"] for b in only["error_budgets"]} == {"prod-2"}


def test_markdown_html_and_chat_show_the_same_budgets(bot: Bot, clock: FakeClock, chat: MemoryChat) -> None:
    probe_history(bot, clock)
    with bot.db.session() as session:
        md, _, _ = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="md", since="30d")
        page, _, _ = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="html",
                                                    since="30d")
    assert "## Error budgets left" in md
    assert "| prod-1 | pod-creation | 99.90 % | 99.500 % | 200 | -400 % |" in md
    assert "| prod-1 | api-latency | 99.00 % | 99.500 % | 200 | 50 % |" in md
    assert "| prod-2 | pod-creation | 99.90 % | 100.000 % | 10 | 100 % | 0.0x |" in md
    row = page.split('data-cluster="prod-1" data-objective="pod-creation"', 1)[1].split("</tr>", 1)[0]
    assert 'class="overspent">-400 %' in row
    answer = chat.say("alice", "/incident slo --cluster prod-1")
    assert "prod-1 pod-creation (objective 99.90%): 99.500% good of 200 probes, budget left -400%" in answer
    assert "prod-1 api-latency (objective 99.00%): 99.500% good of 200 probes, budget left 50%" in answer


def test_no_probes_is_said_plainly_in_the_report(bot: Bot) -> None:
    with bot.db.session() as session:
        md, _, tree = report_render.build_and_render(session, bot.settings, now=bot.clock.now(), fmt="md",
                                                     since="7d")
    assert "No probe results in this window (no customer probes configured, or none ran)." in md


@pytest.fixture(autouse=True)
def _slow_limits(bot: Bot) -> None:
    """The latency objectives as documented: a pod within 5 s, a write within 1 s."""
    bot.settings.probes.slow_seconds.update({"pod": 5.0, "write-path": 1.0})
