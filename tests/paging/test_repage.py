"""Re-paging: a page nobody acknowledges is repeated, then escalated along the rota; an acknowledgement stops it."""

from __future__ import annotations

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from tests.support.fake_pagers import FakePagerDuty


def paged(chat: MemoryChat) -> list[tuple[str, int]]:
    return [(m.payload["user"], m.payload["level"]) for m in chat.deliverer.delivered if m.kind == "page"]


def repaged(chat: MemoryChat) -> list[str]:
    return [m.payload["user"] for m in chat.deliverer.delivered if m.kind == "page" and ":repage:" in (m.dedupe_key or "")]


def test_an_unanswered_page_is_repeated_then_escalated_along_the_rota(
        bot: Bot, chat: MemoryChat, clock: FakeClock, fake_pd: FakePagerDuty) -> None:
    bot.settings.paging.repage_after_seconds = 180
    bot.settings.paging.repeats = 1
    chat.say("carol", "/incident declare etcd quorum lost --severity sev1")
    assert paged(chat) == [("alice", 0)]
    clock.advance(179)
    chat.pump()
    assert paged(chat) == [("alice", 0)], "not before the delay"
    clock.advance(1)
    chat.pump()
    assert paged(chat) == [("alice", 0), ("alice", 0)], "the same person again first"
    clock.advance(180)
    chat.pump()
    assert paged(chat)[-1] == ("bob", 1), "then the next person of the rota"
    timeline = chat.say("carol", "/incident timeline INC-1")
    assert "page to @alice not acknowledged after 3m00s: paging again (1/1)" in timeline
    assert "page not acknowledged after 6m00s: escalating to @bob (level 1)" in timeline
    log = fake_pd.incidents["INC-1"]["log"]
    assert len(fake_pd.incidents) == 1 and len(log) >= 3, "each re-page is a trigger on the same PagerDuty incident"
    assert {event["event_action"] for event in log} == {"trigger"}
    chat.say("bob", "/incident ack")
    repages = len(repaged(chat))
    clock.advance(3600)
    chat.pump()
    assert len(repaged(chat)) == repages == 2, "acknowledged: no more re-pages (budget breaches still escalate)"


def test_escalation_ends_at_the_top_of_the_rota_and_at_max_escalations_and_with_the_incident(
        bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    bot.settings.paging.repeats = 0
    bot.settings.paging.max_escalations = 3
    chat.say("carol", "/incident declare etcd quorum lost")
    for _ in range(6):
        clock.advance(bot.settings.paging.repage_after_seconds)
        chat.pump()
    assert repaged(chat) == ["bob", "carol", "carol"], "the last of the rota is paged again, up to max_escalations"
    chat.say("dave", "/incident declare apiserver slow")
    chat.say("dave", "/incident cancel false alarm")
    clock.advance(3600)
    chat.pump()
    assert repaged(chat) == ["bob", "carol", "carol"], "a cancelled incident pages nobody again"


def test_a_restart_repages_once(bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    from bot.domain.slo.repage import RePager

    chat.say("carol", "/incident declare etcd quorum lost")
    clock.advance(bot.settings.paging.repage_after_seconds)
    first, second = RePager(bot.db, bot.settings, clock), RePager(bot.db, bot.settings, clock)
    assert first.tick() == 1 and second.tick() == 0, "a second replica (or a restart) finds the step done"
