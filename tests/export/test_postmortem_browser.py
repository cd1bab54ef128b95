"""The HTML post-mortem as reviewers see it: headless Chromium at desktop and phone widths.

A real drill's timeline once had rows ~800 px tall (raw evidence dumps in a
narrow column); now every row fits on a screen and nothing is wider than the
window.  Screenshots are kept in the test artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.export import export_incident
from bot.core.store import timeline
from tests.export import scenarios
from tests.support.browser import DESKTOP, PHONE, browser, layout, shot  # noqa: F401 (fixture)

BIG_EVIDENCE = {
    "check": "etcd-quorum", "result": "fail", "sop": "etcd-quorum-loss",
    "members": [{"name": f"etcd-{i}", "url": f"https://10.0.0.{i}:2379", "healthy": i == 1,
                 "error": "context deadline exceeded " * 4, "raft_term": 12 + i} for i in range(1, 6)],
    "query": "sum by (instance) (rate(etcd_server_leader_changes_seen_total[5m])) " * 3,
    "samples": [[1764039600 + i, str(i * 0.25)] for i in range(40)],
}


def a_drill_with_heavy_evidence(bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    scenarios.failed_then_successful_mitigation(bot, chat, clock)
    with bot.services.incidents.transaction("INC-1") as (session, _row):
        for n in range(3):
            timeline.record(session, 1, "diagnosis.check", f"etcd quorum check {n}: 1 of 5 members healthy",
                            at=clock.now(), actor="diagnosis", source="diagnosis", data=BIG_EVIDENCE)
    chat.say("alice", "/incident impact all writes to prod-1 failed for 3 minutes " + "and reads were slow " * 5)
    chat.say("alice", "/incident action add an etcd member health alert @dave due 2026-12-15 p1")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_row_is_taller_than_the_screen_and_nothing_overflows(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                                 browser: Any, tmp_path: Path,  # noqa: F811
                                                                 viewport: dict[str, int]) -> None:
    a_drill_with_heavy_evidence(bot, chat, clock)
    page_file = tmp_path / "INC-1.html"
    page_file.write_text(export_incident(bot.db, bot.settings, "INC-1", fmt="html").content, encoding="utf-8")
    page = browser.new_page(viewport=viewport)
    try:
        page.goto(page_file.as_uri())
        measured = layout(page)
        shot(page, f"postmortem-{viewport['width']}")
        assert measured["scrollWidth"] <= measured["clientWidth"], measured["overflowing"]
        assert measured["tallestRow"] < viewport["height"] / 2, measured
        # the evidence is one line until opened; opened, it is all there
        evidence = page.locator("tr[data-kind='diagnosis.check'] details").last
        assert evidence.locator("summary").inner_text().startswith("check=etcd-quorum; result=fail;")
        assert not evidence.locator("pre").is_visible()
        evidence.locator("summary").click()
        assert "raft_term" in evidence.locator("pre").inner_text()
        # the alert links to the graph that fired it; run events link to their run
        assert page.locator("a.generator").get_attribute("href") == "http://prometheus.invalid/graph?g0.expr=apiserver"
        page.locator("tr[data-kind='run.failed'] a").first.click()
        assert page.evaluate("location.hash") == "#run-1"
    finally:
        page.close()
