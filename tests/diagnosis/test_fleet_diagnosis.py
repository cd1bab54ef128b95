"""`/incident diagnose --cluster NAME`: one cluster of a fleet incident, its endpoints, its own diagnosed_at."""

from __future__ import annotations


import pytest

from bot.compose.app.bot import Bot
from bot.chat import handlers_playbooks
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.diagnosis.fakes import FakeEtcd, FakeHttp, cluster_config
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.incidents import fleet
from bot.core.store.models import Incident, TimelineEvent
from integrations.clients.kubernetes import FakeKubernetes
from integrations.clients.prometheus import FakePrometheus

ENDPOINTS = {name: {"main": [f"http://{name}-main-1:6443"], "bypass": [f"http://{name}-bypass-1:6443"],
                    "etcd": [f"http://{name}-etcd-{i}:2379" for i in (1, 2, 3)]} for name in ("prod-eu-1", "prod-eu-2")}


@pytest.fixture
def http() -> FakeHttp:
    """Both clusters' main apiservers fail /readyz; their bypass ones answer."""
    return FakeHttp({url + "/readyz": status for e in ENDPOINTS.values()
                     for url, status in ((e["main"][0], 500), (e["bypass"][0], 200))})


@pytest.fixture
def fleet_bot(bot: Bot, http: FakeHttp) -> Bot:
    access = {name: ClusterAccess(name, cluster_config(name, main=e["main"], bypass=e["bypass"], etcd=e["etcd"]),
                                  metrics=FakePrometheus(), kubernetes=FakeKubernetes(), etcd=FakeEtcd(tuple(e["etcd"])),
                                  http=http)
              for name, e in ENDPOINTS.items()}
    diagnoser = bot.services.extras["diagnoser"]
    diagnoser.backends = lambda name: access.get(name) or ClusterAccess(name)
    diagnoser.sleep = lambda seconds: None
    handlers_playbooks.install(bot)  # the shipped playbooks: a diagnosis proposes one
    bot.settings.diagnosis.auto = False  # diagnosis on request only: the transcript decides which cluster
    return bot


def fleet_incident(bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare apiservers down in eu-west --cluster prod-eu-1 --severity sev1")
    chat.say("alice", "/incident ack")
    with bot.db.session() as s:
        fleet.add(s, s.get(Incident, 1), "prod-eu-2", started_at=clock.now(), now=clock.now())  # type: ignore[arg-type]
    chat.pump()


def facts(bot: Bot) -> dict[str, fleet.ClusterFacts]:
    return {c.name: c for c in bot.services.incidents.view(1).clusters}


def test_diagnose_one_cluster_reads_its_endpoints_and_stamps_only_it(fleet_bot: Bot, chat: MemoryChat,
                                                                     clock: FakeClock) -> None:
    fleet_incident(fleet_bot, chat, clock)
    clock.advance(100)
    reply = chat.say("alice", "/incident diagnose --cluster prod-eu-2 --sop apiserver-unavailable")
    assert reply.splitlines()[0].startswith("INC-1 diagnosis #1")
    assert "Root cause: the main apiservers are down" in reply
    with fleet_bot.db.session() as s:
        checks = [e.data for e in s.query(TimelineEvent).filter_by(kind="diagnosis.check")]
    probed = {p["url"] for c in checks for p in c.get("probes", [])}
    assert probed and all("prod-eu-2" in url for url in probed), probed  # its own endpoints, never prod-eu-1's
    now = clock.now()
    clusters = facts(fleet_bot)
    assert (clusters["prod-eu-2"].diagnosed_at, clusters["prod-eu-2"].state) == (now, "diagnosed")
    assert clusters["prod-eu-2"].root_cause.startswith("the main apiservers are down")  # type: ignore[union-attr]
    assert (clusters["prod-eu-1"].diagnosed_at, clusters["prod-eu-1"].state) == (None, "notified")
    incident = fleet_bot.services.incidents.get(1)
    assert (incident.state, incident.diagnosed_at) == ("diagnosing", None), "prod-eu-1 is not understood yet"
    timeline = chat.say("alice", "/incident timeline")
    assert "cluster prod-eu-2 diagnosed: the main apiservers are down" in timeline
    # the proposal is planned for the cluster diagnosed (which this test's settings do not configure)
    assert "could not propose playbook failover-apiserver: cluster `prod-eu-2` is not configured" in reply

    clock.advance(60)
    chat.say("alice", "/incident diagnose --cluster prod-eu-1 --sop apiserver-unavailable")
    clusters = facts(fleet_bot)
    assert [clusters[c].diagnosed_at for c in ("prod-eu-1", "prod-eu-2")] == [clock.now(), now]
    incident = fleet_bot.services.incidents.get(1)
    assert (incident.state, incident.diagnosed_at) == ("diagnosed", clock.now()), "every cluster is diagnosed"
    assert "every cluster is diagnosed (the last: prod-eu-1)" in chat.say("alice", "/incident timeline")


def test_a_cluster_outside_the_incident_is_refused_with_its_clusters(fleet_bot: Bot, chat: MemoryChat,
                                                                     clock: FakeClock) -> None:
    fleet_incident(fleet_bot, chat, clock)
    assert chat.say("alice", "/incident diagnose --cluster prod-us-1") == (
        "`--cluster prod-us-1` is not a cluster of this incident; its clusters: prod-eu-1, prod-eu-2.")
    kinds = [e.kind for e in fleet_bot.services.incidents.timeline(1)[1]]
    assert "diagnosis.started" not in kinds and "diagnosis.check" not in kinds
    assert fleet_bot.services.incidents.get(1).state == "notified"


def test_without_cluster_the_diagnosis_is_the_whole_incidents_cause(fleet_bot: Bot, chat: MemoryChat,
                                                                    clock: FakeClock) -> None:
    fleet_incident(fleet_bot, chat, clock)
    clock.advance(30)
    chat.say("alice", "/incident diagnose --sop apiserver-unavailable")
    assert [c.diagnosed_at for c in facts(fleet_bot).values()] == [clock.now(), clock.now()]
    assert fleet_bot.services.incidents.get(1).state == "diagnosed"
