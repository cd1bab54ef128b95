"""The board in headless Chromium: clocks count down and new incidents appear without a reload; pages fit a phone."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from tests.support.browser import DESKTOP, PHONE, layout, shot
from tests.ui.conftest import TOKEN, Served


def clock_text(page: Any, ref: str, stage: str) -> str:
    return page.locator(f"#{ref} .clock[data-stage='{stage}'] .left").inner_text()  # type: ignore[no-any-return]


def test_the_board_counts_down_and_shows_a_new_incident_without_a_reload(chat: MemoryChat, clock: FakeClock,
                                                                          live: Served, page: Any) -> None:
    chat.say("alice", "/incident declare apiserver 5xx in prod-1 --severity sev1 --cluster prod-1")
    chat.say("alice", "/incident ack")
    page.goto(f"{live.url}/ui/?token={TOKEN}")
    assert page.url == f"{live.url}/ui/"  # the token left the address bar
    page.evaluate("window.loadedOnce = true")
    assert clock_text(page, "INC-1", "notify") == "notified 0s"
    assert clock_text(page, "INC-1", "diagnose").endswith("left")
    assert page.locator("#INC-1 .meta").inner_text() == "cluster prod-1 · commander @alice"

    # the bot's clock moves 4 minutes: the diagnosis clock follows and turns to a warning (80 % of 5 min)
    clock.advance(245)
    before = clock_text(page, "INC-1", "diagnose")
    assert before.startswith(("4m", "5m"))
    page.wait_for_selector("#INC-1 .clock[data-stage='diagnose'][data-verdict='warning']", timeout=5000)
    assert clock_text(page, "INC-1", "diagnose") in {f"{n}s left" for n in range(40, 56)}
    # ... and past the deadline the card turns red
    clock.advance(120)
    page.wait_for_selector("#INC-1.level-breached", timeout=5000)
    assert clock_text(page, "INC-1", "diagnose").startswith("over ")
    shot(page, "board-breached-1920")

    # a new incident appears by itself, within about a second
    said = time.monotonic()
    chat.say("bob", "/incident declare etcd fsync latency --severity sev2 --cluster prod-2")
    page.wait_for_selector("#INC-2", timeout=5000)
    delay = time.monotonic() - said
    print(f"new incident on the board after {delay:.2f}s")
    assert delay <= 2.0
    assert page.evaluate("window.loadedOnce") is True  # no reload happened
    assert page.locator(".card").first.get_attribute("data-ref") == "INC-1"  # the breached one stays first


def test_the_board_shows_a_fleet_and_the_run_in_progress(chat: MemoryChat, live: Served, page: Any) -> None:
    from bot.core.store import timeline
    from bot.core.store.models import IncidentCluster, PlaybookRun, RunStep

    chat.say("alice", "/incident declare apiserver 5xx across the fleet --cluster prod-1")
    chat.say("alice", "/incident cause LIST storm from ci-robot")
    bot = live.bot
    now = bot.clock.now()
    with bot.db.session() as s:
        for name in ("prod-1", "prod-2"):  # the incident's own cluster may already have its row
            row = s.query(IncidentCluster).filter_by(incident_id=1, cluster=name).one_or_none() or IncidentCluster(
                incident_id=1, cluster=name, started_at=now, detected_at=now)
            row.state, row.notified_at, row.diagnosed_at = "diagnosed", now, now if name == "prod-1" else None
            s.add(row)
        run = PlaybookRun(incident_id=1, playbook="throttle-client", cluster="prod-1", state="running",
                          requested_by="alice", requested_at=now, started_at=now, plan_text="+ FlowSchema ci-robot")
        s.add(run)
        s.flush()
        s.add(RunStep(run_id=run.id, index=1, phase="execute", name="create FlowSchema ci-robot", state="running",
                      started_at=now))
        timeline.record(s, 1, "run.started", f"RUN-{run.id} started", at=now, actor="engine", source="engine",
                        data={"run_id": run.id})
    page.goto(f"{live.url}/ui/?token={TOKEN}")
    card = page.locator("#INC-1")
    assert card.locator(".run").inner_text() == "▶ RUN-1 throttle-client — execute step 2: create FlowSchema ci-robot (running)"
    assert card.locator(".fleet li").all_inner_texts() == ["prod-1 diagnosed", "prod-2 diagnosed"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_fits_without_overflow(chat: MemoryChat, clock: FakeClock, live: Served, page: Any,
                                          viewport: dict[str, int]) -> None:
    for n in range(6):
        chat.say("alice", f"/incident declare etcd member {n} slow on a very-long-cluster-name-{n}-eu-west "
                          f"--cluster prod-{n}")
    chat.say("alice", "/incident note the_fsync_latency_is_a_very_long_unbroken_word_" + "x" * 80 + " INC-1")
    chat.say("alice", "/incident action add an fsync alert @dave due 2026-12-15 p1 INC-1")
    page.set_viewport_size(viewport)
    page.goto(f"{live.url}/ui/?token={TOKEN}")
    for path, name in (("/ui/", "board"), ("/ui/incidents/INC-1", "incident"), ("/ui/report", "report")):
        page.goto(live.url + path)
        measured = layout(page)
        shot(page, f"ui-{name}-{viewport['width']}")
        assert measured["scrollWidth"] <= measured["clientWidth"], (path, measured["overflowing"])
        assert measured["tallestRow"] < viewport["height"], (path, measured)
