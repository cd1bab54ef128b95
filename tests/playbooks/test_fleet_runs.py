"""A run of a fleet incident targets one of its clusters (`--cluster`), never a cluster outside it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import Incident, PlaybookRun
from bot.domain.incidents import fleet


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


def clusters_of(bot: Bot, inc: int) -> dict[str, fleet.ClusterFacts]:
    return {c.name: c for c in bot.services.incidents.view(inc).clusters}


def test_a_successful_run_mitigates_only_the_cluster_it_changed(pb_bot: Bot, pchat: MemoryChat, clock: FakeClock,
                                                                 target: Path) -> None:
    fleet_incident(pb_bot, pchat, clock)
    t0 = clock.now()
    clock.advance(200)
    pchat.say("alice", f"/incident run write-file path={target} --cluster prod-eu-2")
    pchat.say("alice", "/incident approve RUN-1")
    incident = pb_bot.services.incidents.get(1)
    assert incident.state == "mitigating", "prod-eu-1 is still failing: the incident is not mitigated"
    assert incident.mitigated_at is None
    facts = clusters_of(pb_bot, 1)
    assert facts["prod-eu-2"].mitigated_at == t0 + timedelta(seconds=200)
    assert facts["prod-eu-1"].mitigated_at is None
    timeline = pchat.say("alice", "/incident timeline")
    assert "cluster prod-eu-2 mitigated: RUN-1 write-file verified" in timeline
    assert "cluster prod-eu-1 mitigated" not in timeline

    clock.set(t0 + timedelta(seconds=700))  # the 10-minute budget has passed
    facts = clusters_of(pb_bot, 1)
    assert ({c: f.clocks[2].verdict for c, f in facts.items()}, {c: f.verdict for c, f in facts.items()}) == (
        {"prod-eu-1": "breached", "prod-eu-2": "met"}, {"prod-eu-1": "breached", "prod-eu-2": "met"})
    status = pchat.say("alice", "/incident status")
    assert "1-5-10 overall (the worst cluster): breached" in status
    rows = {line.split()[0]: line for line in status.splitlines() if line.strip().startswith("prod-eu-")}
    assert rows["prod-eu-1"].rstrip().endswith("✗ breached") and rows["prod-eu-2"].split()[1] == "mitigated"

    pchat.say("alice", f"/incident run write-file path={target}.1 --cluster prod-eu-1")
    pchat.say("alice", "/incident approve RUN-2")
    incident = pb_bot.services.incidents.get(1)
    assert (incident.state, incident.mitigation) == ("mitigated", "write-file (RUN-2)"), "the last cluster mitigated"
    assert incident.mitigated_at == t0 + timedelta(seconds=700)
    facts = clusters_of(pb_bot, 1)
    assert [facts[c].mitigated_at for c in ("prod-eu-1", "prod-eu-2")] == [
        t0 + timedelta(seconds=700), t0 + timedelta(seconds=200)], "each cluster keeps the moment its run verified"
    assert "every cluster is mitigated (the last: prod-eu-1)" in pchat.say("alice", "/incident timeline")


def test_mitigated_by_the_commander_reaches_every_cluster_at_once(pb_bot: Bot, pchat: MemoryChat,
                                                                  clock: FakeClock) -> None:
    fleet_incident(pb_bot, pchat, clock)
    clock.advance(90)
    assert pchat.say("bob", "/incident cluster prod-eu-2 mitigated") == \
        "only the commander @alice can mark a cluster of INC-1 mitigated."
    assert pchat.say("alice", "/incident cluster prod-eu-2 mitigated") == "Cluster prod-eu-2 of INC-1 is mitigated."
    assert pb_bot.services.incidents.get(1).state == "diagnosed"
    clock.advance(30)
    pchat.say("alice", "/incident mitigated")
    facts = clusters_of(pb_bot, 1)
    assert [facts[c].mitigated_at - clock.now() for c in ("prod-eu-1", "prod-eu-2")] == [
        timedelta(0), timedelta(seconds=-30)], "the one mitigated on its own keeps its time"


def test_the_last_cluster_mitigated_by_hand_mitigates_the_incident(pb_bot: Bot, pchat: MemoryChat,
                                                                   clock: FakeClock) -> None:
    fleet_incident(pb_bot, pchat, clock)
    pchat.say("alice", "/incident cluster prod-eu-1 mitigated")
    assert pchat.say("alice", "/incident cluster prod-eu-1 mitigated") == \
        "cluster prod-eu-1 of INC-1 is already mitigated."
    assert pchat.say("alice", "/incident cluster prod-eu-2 mitigated") == \
        "Cluster prod-eu-2 of INC-1 is mitigated; every cluster is, so INC-1 is mitigated."
    assert pb_bot.services.incidents.get(1).state == "mitigated"


def test_a_cluster_with_its_own_cause_is_repaired_before_the_others_are_understood(
        pb_bot: Bot, pchat: MemoryChat, clock: FakeClock, target: Path) -> None:
    pchat.say("alice", "/incident declare etcd fsync slow in eu-west --cluster prod-eu-1")
    pchat.say("alice", "/incident ack")
    with pb_bot.db.session() as s:
        fleet.add(s, s.get(Incident, 1), "prod-eu-2", started_at=clock.now(), now=clock.now())  # type: ignore[arg-type]
    pchat.say("alice", "/incident cluster prod-eu-2 diagnosed one client floods its apiserver")
    assert pb_bot.services.incidents.get(1).state == "notified", "prod-eu-1 has no cause yet"
    assert pchat.say("alice", f"/incident run write-file path={target} --cluster prod-eu-1").startswith(
        "INC-1 is notified: a playbook runs only once the cause is recorded")
    pchat.say("alice", f"/incident run write-file path={target} --cluster prod-eu-2")
    pchat.say("alice", "/incident approve RUN-1")
    with pb_bot.db.session() as s:
        assert [(r.cluster, r.state) for r in s.query(PlaybookRun)] == [("prod-eu-2", "succeeded")]
    facts = clusters_of(pb_bot, 1)
    assert facts["prod-eu-2"].mitigated_at == clock.now() and facts["prod-eu-1"].mitigated_at is None
    assert pb_bot.services.incidents.get(1).state == "notified"
