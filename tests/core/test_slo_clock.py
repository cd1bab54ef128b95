"""The 1-5-10 clock under freezegun: met, late, never reached, T0 before detection, restarts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time

from bot.compose.app.bot import Bot, build_bot
from bot.chat.memory import MemoryChat
from bot.core.clock import SystemClock
from bot.core.config import Settings
from bot.core.config.budgets import StageBudgets
from bot.domain.slo.clocks import clocks
from tests.conftest import T0


@pytest.fixture
def frozen() -> Iterator[object]:
    with freeze_time(T0, ignore=["_pytest.timing"]) as frozen_time:  # pytest keeps timing the tests for real
        yield frozen_time


@pytest.fixture
def live_bot(settings: Settings, frozen: object) -> Iterator[Bot]:
    b = build_bot(settings, clock=SystemClock())  # the real clock, frozen by freezegun
    yield b
    b.close()


def verdicts(bot: Bot, ref: str = "INC-1") -> dict[str, str]:
    incident = bot.services.incidents.get(ref)
    return {c.stage: c.verdict for c in clocks(incident, bot.settings.budgets, bot.clock.now())}


def kinds(bot: Bot, ref: str = "INC-1") -> list[str]:
    return [e.kind for e in bot.services.incidents.timeline(ref)[1]]


def test_stages_reached_in_time_are_met(live_bot: Bot, frozen) -> None:  # type: ignore[no-untyped-def]
    chat = MemoryChat(live_bot.dispatcher, workers=live_bot.workers)
    chat.say("alice", "/incident declare apiserver 5xx --severity sev1")  # announced at once
    frozen.tick(timedelta(seconds=40))
    chat.say("alice", "/incident ack")
    frozen.tick(timedelta(seconds=200))
    chat.say("alice", "/incident cause one client floods LIST pods")
    frozen.tick(timedelta(seconds=300))
    chat.say("alice", "/incident mitigated throttled the client")
    assert verdicts(live_bot) == {"notify": "met", "diagnose": "met", "mitigate": "met"}
    assert "slo.breach" not in kinds(live_bot)


def test_a_late_stage_is_breached_and_escalates_once(live_bot: Bot, frozen) -> None:  # type: ignore[no-untyped-def]
    chat = MemoryChat(live_bot.dispatcher, workers=live_bot.workers)
    chat.say("alice", "/incident declare etcd slow")
    chat.say("alice", "/incident ack")
    frozen.tick(timedelta(seconds=239))
    chat.pump()
    assert "slo.warning" not in kinds(live_bot)
    frozen.tick(timedelta(seconds=1))  # 240 s = 80 % of the 5-minute diagnose budget
    chat.pump()
    chat.pump()
    assert kinds(live_bot).count("slo.warning") == 1
    frozen.tick(timedelta(seconds=61))  # diagnose budget gone
    chat.pump()
    chat.pump()
    assert kinds(live_bot).count("slo.breach") == 1
    pages = [m.payload for m in chat.deliverer.delivered if m.kind == "page"]
    assert pages[-1]["user"] == "bob"  # the next person after alice in the rota
    chat.say("alice", "/incident cause disk full")
    assert verdicts(live_bot)["diagnose"] == "breached"
    assert kinds(live_bot).count("slo.breach") == 1  # reaching it late does not record it again


def test_a_stage_never_reached_is_reported_as_such(live_bot: Bot, frozen) -> None:  # type: ignore[no-untyped-def]
    chat = MemoryChat(live_bot.dispatcher, workers=live_bot.workers)
    chat.say("alice", "/incident declare probe flapped")
    chat.say("alice", "/incident cancel false positive")
    frozen.tick(timedelta(hours=1))
    chat.pump()
    assert verdicts(live_bot) == {"notify": "met", "diagnose": "stopped", "mitigate": "stopped"}
    assert "never diagnosed" in chat.say("alice", "/incident status INC-1")
    assert "slo.breach" not in kinds(live_bot)


def test_t0_before_detection_shortens_the_time_left(live_bot: Bot, frozen) -> None:  # type: ignore[no-untyped-def]
    # an alert that started 50 s before it reached the bot leaves 10 s to notify
    incident = live_bot.services.incidents.declare(
        "etcdMembersDown", actor="alertmanager", source="alertmanager",
        started_at=live_bot.clock.now() - timedelta(seconds=50))
    notify = clocks(live_bot.services.incidents.get(incident.id), live_bot.settings.budgets, live_bot.clock.now())[0]
    assert notify.remaining_seconds == 10
    assert notify.verdict == "warning"  # 50 s of 60 is past the 80 % mark
    frozen.tick(timedelta(seconds=11))
    MemoryChat(live_bot.dispatcher, workers=live_bot.workers).deliverer.refuse = True
    live_bot.workers[0].tick()
    assert verdicts(live_bot, f"INC-{incident.id}")["notify"] == "breached"


def test_a_restart_does_not_record_a_breach_again(settings: Settings, frozen) -> None:  # type: ignore[no-untyped-def]
    first = build_bot(settings, clock=SystemClock())
    MemoryChat(first.dispatcher).say("alice", "/incident declare control plane down")
    frozen.tick(timedelta(seconds=400))
    first.workers[0].tick()
    first.close()
    second = build_bot(settings, clock=SystemClock())  # same database, new process
    frozen.tick(timedelta(seconds=5))
    second.workers[0].tick()
    second.workers[0].tick()
    assert kinds(second).count("slo.breach") == 1
    second.close()


def test_budgets_come_from_configuration_per_severity(settings: Settings, frozen) -> None:  # type: ignore[no-untyped-def]
    settings.budgets.sev1 = StageBudgets(notify=30, diagnose=120, mitigate=300)
    b = build_bot(settings, clock=SystemClock())
    MemoryChat(b.dispatcher).say("alice", "/incident declare etcd quorum lost --severity sev1")
    frozen.tick(timedelta(seconds=150))
    assert verdicts(b)["diagnose"] == "breached"
    b.close()
