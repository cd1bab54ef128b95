"""Diagnosis as people meet it in chat: automatic once after the announcement, and on request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.domain.diagnosis.fakes import FakeEtcd, FakeHttp, cluster_config
from bot.domain.diagnosis.ports import ClusterAccess
from integrations.clients.kubernetes import FakeKubernetes
from integrations.clients.prometheus import FakePrometheus

MAIN = ["http://main-1:6443"]
BYPASS = ["http://bypass-1:6443"]
ETCD = ["http://etcd-1:2379", "http://etcd-2:2379", "http://etcd-3:2379"]


@pytest.fixture
def http() -> FakeHttp:
    return FakeHttp({MAIN[0] + "/readyz": 500, BYPASS[0] + "/readyz": 200})


@pytest.fixture
def etcd() -> FakeEtcd:
    return FakeEtcd(tuple(ETCD))


@pytest.fixture
def diagnosing_bot(bot: Bot, http: FakeHttp, etcd: FakeEtcd) -> Bot:
    access = ClusterAccess("prod-1", cluster_config(main=MAIN, bypass=BYPASS, etcd=ETCD), metrics=FakePrometheus(),
                           kubernetes=FakeKubernetes(), etcd=etcd, http=http)
    diagnoser = bot.services.extras["diagnoser"]
    diagnoser.backends = lambda name: access if name == "prod-1" else ClusterAccess(name)
    diagnoser.sleep = lambda seconds: None  # repeated answers come at once
    return bot


def kinds(bot: Bot, ref: str = "INC-1") -> list[str]:
    return [e.kind for e in bot.services.incidents.timeline(ref)[1]]


def test_an_announced_incident_is_diagnosed_once_and_the_cause_recorded(diagnosing_bot: Bot, chat: MemoryChat) -> None:
    bot = diagnosing_bot
    chat.say("alice", "/incident declare apiserver down in prod-1 --cluster prod-1 --severity sev1")
    chat.pump()  # the announcement was delivered (notified); the worker diagnoses now
    chat.pump()  # and never twice
    incident = bot.services.incidents.get("INC-1")
    assert incident.state == "diagnosed" and incident.diagnosed_at == bot.clock.now()
    assert incident.root_cause.startswith("the main apiservers are down (1/1 fail /readyz) while 1/1 bypass")
    events = bot.services.incidents.timeline("INC-1")[1]
    assert kinds(bot).count("diagnosis.started") == 1
    checks = [e for e in events if e.kind == "diagnosis.check"]
    # each check is recorded when it answered: they run at once, so the order is the components'
    assert sorted(e.data["check"] for e in checks) == ["bypass", "etcd", "main", "rejected", "top_users"]
    main = next(e for e in checks if e.data["check"] == "main")
    assert (main.source, main.data["status"], main.data["probes"][0]["status"]) == ("diagnosis", "ok", 500)
    conclusion = next(e for e in events if e.kind == "diagnosis.conclusion")
    assert conclusion.data["playbook"] == "failover-apiserver" and conclusion.data["conclusion"] == "failover"
    cause = next(e for e in events if e.kind == "cause")
    assert (cause.actor, cause.source) == ("diagnosis", "diagnosis")
    proposal = next(e for e in events if e.kind == "diagnosis.proposal")
    assert "failover-apiserver" in proposal.text


def test_diagnose_on_request_with_a_named_procedure(diagnosing_bot: Bot, chat: MemoryChat, etcd: FakeEtcd) -> None:
    bot = diagnosing_bot
    bot.settings.diagnosis.auto = False
    chat.say("alice", "/incident declare etcd alarms --cluster prod-1")
    etcd.down = {ETCD[0], ETCD[1]}
    reply = chat.say("alice", "/incident diagnose --sop etcd-health")
    assert reply.splitlines()[0].startswith("INC-1 diagnosis #1: etcd quorum lost")
    assert "Root cause: etcd lost quorum: 0/3 members healthy, NO QUORUM, no leader" in reply
    assert "Playbook: restore-etcd" in reply
    assert "✓ check health (etcd): 0/3 members healthy" in reply  # decided on health: hashkv is not waited for
    incident = bot.services.incidents.get("INC-1")
    assert incident.state == "diagnosed" and incident.root_cause.startswith("etcd lost quorum")
    etcd.down = {ETCD[2]}
    reply = chat.say("bob", "/incident diagnose INC-1 --sop etcd-health")
    assert "diagnosis #2" in reply and "Escalated to people: one etcd member is down but quorum holds" in reply


def test_an_escalation_keeps_the_evidence_and_pages_without_faking_a_cause(diagnosing_bot: Bot, chat: MemoryChat,
                                                                            http: FakeHttp) -> None:
    bot = diagnosing_bot
    http.statuses[MAIN[0] + "/readyz"] = 200  # nothing the playbooks know is wrong
    chat.say("carol", "/incident declare pods slow to start --cluster prod-1")
    chat.say("carol", "/incident ack")
    incident = bot.services.incidents.get("INC-1")
    assert incident.state == "diagnosing" and incident.root_cause is None and incident.diagnosed_at is None
    events = bot.services.incidents.timeline("INC-1")[1]
    escalated = next(e for e in events if e.kind == "diagnosis.escalated")
    assert escalated.data["evidence"]["main"].startswith("1/1 answered 200")
    assert "rejected" in escalated.data["evidence"]
    pages = [m for m in chat.deliverer.delivered if m.kind == "page" and "diagnosis needs you" in m.payload["reason"]]
    assert [p.payload["user"] for p in pages] == ["carol"]  # the commander (she acked before the run)


def test_incidents_of_clusters_diagnosis_cannot_see_are_left_alone(diagnosing_bot: Bot, chat: MemoryChat) -> None:
    chat.say("alice", "/incident declare something odd --cluster elsewhere")
    chat.pump()
    assert "diagnosis.started" not in kinds(diagnosing_bot)
    assert diagnosing_bot.services.incidents.get("INC-1").state == "notified"


def test_a_bad_procedure_name_is_one_line_and_changes_nothing(diagnosing_bot: Bot, chat: MemoryChat) -> None:
    diagnosing_bot.settings.diagnosis.auto = False
    chat.say("alice", "/incident declare etcd slow --cluster prod-1")
    before = kinds(diagnosing_bot)
    shipped = sorted(diagnosing_bot.services.extras["diagnoser"].library.procedures)  # the files in sop/
    assert {"apiserver-overload", "apiserver-unavailable", "control-plane-triage", "etcd-health"} <= set(shipped)
    assert chat.say("alice", "/incident diagnose --sop nope") == (
        f"there is no procedure `nope`; known procedures: {', '.join(shipped)}.")
    chat.say("alice", "/incident resolve")
    assert chat.say("alice", "/incident diagnose").startswith("INC-1 is resolved, so `diagnose` is not possible now.")
    assert kinds(diagnosing_bot)[: len(before)] == before and "diagnosis.started" not in kinds(diagnosing_bot)


def test_an_automatic_run_cut_short_by_a_crash_runs_again_once(diagnosing_bot: Bot, chat: MemoryChat) -> None:
    bot = diagnosing_bot
    diagnoser = bot.services.extras["diagnoser"]
    chat.say("alice", "/incident declare apiserver down --cluster prod-1")
    crashed = diagnoser._conclude
    diagnoser._conclude = lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed"))  # the process dies here
    with pytest.raises(SystemExit):
        chat.pump()
    diagnoser._conclude = crashed
    assert bot.services.incidents.get("INC-1").state == "diagnosing"
    chat.pump()
    assert kinds(bot).count("diagnosis.started") == 1  # not yet: it may still be running elsewhere
    bot.clock.advance(diagnoser.stale_after_seconds + 1)
    chat.pump()
    chat.pump()
    assert kinds(bot).count("diagnosis.started") == 2 and kinds(bot).count("diagnosis.conclusion") == 1
    assert bot.services.incidents.get("INC-1").state == "diagnosed"


def test_automatic_diagnosis_on_both_stores_runs_once_across_replicas(database_url: str, http: FakeHttp,
                                                                      etcd: FakeEtcd) -> None:
    from bot.compose.app.bot import build_bot
    from bot.core.clock import FakeClock
    from tests.conftest import T0, make_settings

    access = ClusterAccess("prod-1", cluster_config(main=MAIN, bypass=BYPASS, etcd=ETCD), metrics=FakePrometheus(),
                           kubernetes=FakeKubernetes(), etcd=etcd, http=http)
    clock = FakeClock(T0)
    replicas = [build_bot(make_settings(database_url), clock=clock) for _ in range(2)]
    try:
        for replica in replicas:
            replica.services.extras["diagnoser"].backends = lambda name: access
            replica.services.extras["diagnoser"].sleep = lambda seconds: None
        chat = MemoryChat(replicas[0].dispatcher)  # delivers the announcement; no worker runs here
        chat.say("alice", "/incident declare apiserver down --cluster prod-1")
        workers = [next(w for w in r.workers if w.name == "diagnosis") for r in replicas]
        with ThreadPoolExecutor(2) as pool:  # both replicas' workers pick it up at the same moment
            done = list(pool.map(lambda w: w.tick(), workers))
        assert sorted(done) == [0, 1]
        assert kinds(replicas[0]).count("diagnosis.started") == 1
        assert replicas[1].services.incidents.get("INC-1").state == "diagnosed"
    finally:
        for replica in replicas:
            replica.close()


def test_the_announcement_wakes_the_diagnosis_worker(diagnosing_bot: Bot, chat: MemoryChat) -> None:
    worker = next(w for w in diagnosing_bot.workers if w.name == "diagnosis")
    worker.wake.clear()
    chat.say("alice", "/incident declare apiserver down --cluster prod-1")  # delivered: notified
    assert worker.wake.is_set()
