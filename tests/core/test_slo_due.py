"""The watcher looks only at what is due: stored next instants, batches, replicas, upgrades."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from bot.compose.app.bot import Bot, build_bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.incidents.alert_payload import parse_notification
from bot.domain.slo import worker
from bot.domain.slo.worker import Watcher
from bot.core.store import migrate
from bot.core.store.db import Database
from bot.core.store.models import Incident, TimelineEvent
from tests.conftest import T0, make_settings
from tests.detect.payloads import alert, webhook


def the_watcher(bot: Bot) -> Watcher:
    return next(w for w in bot.workers if isinstance(w, Watcher))


def kinds(bot: Bot, ref: str = "INC-1") -> list[str]:
    return [e.kind for e in bot.services.incidents.timeline(ref)[1]]


def test_a_warning_comes_at_80_percent_of_the_budget_and_not_a_tick_before(bot: Bot, clock: FakeClock) -> None:
    chat = MemoryChat(bot.dispatcher, workers=bot.workers)
    chat.say("alice", "/incident declare etcd slow")  # announced in chat at once: notify met
    clock.advance(239.9)
    assert the_watcher(bot).tick() == 0
    clock.advance(0.1)  # 240 s = 80 % of the 300 s diagnose budget
    assert the_watcher(bot).tick() == 1 and kinds(bot).count("slo.warning") == 1
    clock.advance(60)  # exactly at the deadline: not late yet
    assert the_watcher(bot).tick() == 0
    clock.advance(0.001)
    assert the_watcher(bot).tick() >= 1 and kinds(bot).count("slo.breach") == 1
    assert the_watcher(bot).tick() == 0  # recorded once; nothing else due until the next budget's warning


def test_an_alert_that_moves_t0_earlier_brings_the_warning_earlier(settings, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    bot = build_bot(settings, clock=clock, extensions=["bot.compose.app.webhooks"])
    try:
        ingest = bot.services.extras["alerts"].ingest
        ingest(parse_notification(webhook(alert("EtcdMemberDown", T0, job="etcd", instance="m1"))))
        clock.advance(20)
        assert the_watcher(bot).tick() == 0
        # a member's alert that began 30 s before the first one joins: T0 is now 50 s ago, past 80 % of 60 s
        ingest(parse_notification(webhook(alert("EtcdMemberDown", T0 - timedelta(seconds=30), job="etcd",
                                                instance="m2"))))
        assert the_watcher(bot).tick() == 1
        assert kinds(bot).count("slo.warning") == 1
    finally:
        bot.close()


def test_incidents_falling_due_together_breach_once_each_even_with_two_replicas(database_url: str) -> None:
    clock = FakeClock(T0)
    bot = build_bot(make_settings(database_url), clock=clock, extensions=["bot.compose.app.webhooks"])
    try:
        ingest = bot.services.extras["alerts"].ingest
        count = worker.BATCH + 50  # more than one batch
        ingest(parse_notification(webhook(*[alert("KubeNodeNotReady", T0, severity="warning", cluster=f"c{i}")
                                            for i in range(count)])))
        clock.advance(61)  # every incident's notify budget ran out at the same instant
        replicas = [the_watcher(bot), Watcher(bot.db, bot.settings, clock)]
        assert replicas[0].tick() > 0
        assert replicas[1].tick() == 0  # the second replica finds nothing left to record
        with bot.db.session() as s:
            assert s.execute(select(func.count()).select_from(Incident)).scalar_one() == count
            breaches = s.execute(select(TimelineEvent.incident_id, func.count()).where(
                TimelineEvent.kind == "slo.breach").group_by(TimelineEvent.incident_id)).all()
        assert len(breaches) == count and {n for _, n in breaches} == {1}
    finally:
        bot.close()


def test_an_incident_open_before_the_upgrade_is_watched_after_it(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db, "0004")
    with db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO incidents (title, severity, cluster, state, source, is_drill, created_at, started_at, "
            "detected_at, updated_at, extra) VALUES ('etcd down', 'sev2', 'default', 'detected', 'chat', 0, "
            ":t, :t, :t, :t, '{}')"), {"t": T0.replace(tzinfo=None)})
    db.dispose()
    clock = FakeClock(T0 + timedelta(minutes=2))
    bot = build_bot(make_settings(sqlite_url), clock=clock)  # upgrades to the heads at start
    try:
        assert the_watcher(bot).tick() >= 1
        assert "slo.breach" in kinds(bot)
    finally:
        bot.close()
