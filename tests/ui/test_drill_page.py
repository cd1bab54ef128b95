"""The incident page of a real drill (real etcd, kube-apiservers behind HAProxy, Prometheus, Alertmanager), in Chromium."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock, SystemClock
from bot.compose.sandbox.drill import Deadlines, Drill
from tests.conftest import make_settings
from tests.support.browser import layout, shot
from tests.ui.conftest import EXTENSIONS, TOKEN, serve


def test_the_incident_page_shows_the_timeline_of_a_real_drill(tmp_path: Path, browser: Any) -> None:
    copy = tmp_path / "drill.db"

    def keep(sandbox: Any) -> None:  # the sandbox's database, copied before the sandbox is thrown away
        source = sqlite3.connect(str(sandbox.root / "incident-bot.db"))
        target = sqlite3.connect(str(copy))
        with target:
            source.backup(target)
        source.close()
        target.close()

    result = Drill("apiserver-down", out_dir=tmp_path / "out", echo=lambda line: None,
                   deadlines=Deadlines(notify=90, diagnose=180, mitigate=300, snapshot=120)).run(keep=keep)
    ref = result.scorecard.incident
    assert ref, f"the drill opened no incident: {result.scorecard.failures}"
    assert copy.exists()

    settings = make_settings(f"sqlite:///{copy}")
    settings.api_token = SecretStr(TOKEN)
    bot = build_bot(settings, clock=FakeClock(SystemClock().now()), extensions=EXTENSIONS)
    served = serve(bot)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    try:
        page.goto(f"{served.url}/ui/incidents/{ref}?token={TOKEN}")
        kinds = page.locator("table.timeline tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
        for expected in ("drill.fault", "incident.detected", "diagnosis.conclusion", "run.succeeded", "drill.verified"):
            assert expected in kinds, (expected, kinds)
        assert page.locator("#runs article.run").count() >= 1
        assert page.locator(".stages .stage[data-stage='mitigate']").inner_text().startswith("Recover")
        shot(page, "ui-drill-incident-1366")
        measured = layout(page)
        assert measured["scrollWidth"] <= measured["clientWidth"], measured["overflowing"]
        # filtering by source hides the other rows, without a reload
        page.select_option("#source-filter", "diagnosis")
        visible = page.locator("table.timeline tbody tr:visible").evaluate_all("rows => rows.map(r => r.dataset.source)")
        assert visible and set(visible) == {"diagnosis"}
    finally:
        page.close()
        served.server.should_exit = True
        served.thread.join(10)
        bot.close()
