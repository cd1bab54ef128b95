"""A run of a fleet incident targets one of its clusters (`--cluster`), never a cluster outside it."""

from __future__ import annotations

from pathlib import Path

from bot.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.clock import FakeClock
from bot.store.models import Incident, PlaybookRun
from bot.incidents import fleet


def fleet_incident(bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare etcd fsync slow in eu-west --cluster prod-eu-1")
    chat.say("alice", "/incident ack")
    with bot.db.session() as s:
        row = s.get(Incident, 1)
        fleet.add(s, row, "prod-eu-2", started_at=clock.now(), now=clock.now())  # type: ignore[arg-type]
    chat.say("alice", "/incident cause one client floods the apiserver")


def test_a_run_names_the_cluster_of_the_fleet_it_acts_on(pb_bot: Bot, pchat: MemoryChat, clock: FakeClock,
                                                         target: Path) -> None:
    fleet_incident(pb_bot, pchat, clock)
    pchat.say("alice", f"/incident run write-file path={target} --cluster prod-eu-2")
    pchat.say("alice", f"/incident plan write-file path={target}")
    with pb_bot.db.session() as s:
        assert [r.cluster for r in s.query(PlaybookRun).order_by(PlaybookRun.id)] == ["prod-eu-2", "prod-eu-1"]


def test_a_cluster_outside_the_incident_is_refused_and_nothing_is_planned(pb_bot: Bot, pchat: MemoryChat,
                                                                          clock: FakeClock, target: Path) -> None:
    fleet_incident(pb_bot, pchat, clock)
    assert pchat.say("alice", f"/incident run write-file path={target} --cluster prod-us-1") == (
        "`--cluster prod-us-1` is not a cluster of this incident; its clusters: prod-eu-1, prod-eu-2.")
    with pb_bot.db.session() as s:
        assert s.query(PlaybookRun).count() == 0
