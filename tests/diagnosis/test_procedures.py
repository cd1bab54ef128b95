"""Each shipped procedure, on fakes: it reaches the conclusion its scenario calls for.

Fast and deterministic; the same procedures against real Prometheus, etcd and
the Kubernetes stand-in are in ``test_real_components.py``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.domain.diagnosis.fakes import FakeEtcd, FakeHttp, cluster_config
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.diagnosis.runner import Runner
from integrations.clients.kubernetes import FakeKubernetes
from integrations.clients.prometheus import FakePrometheus, PrometheusTimeout
from tests.conftest import T0

MAIN = ["http://main-1:6443", "http://main-2:6443"]
BYPASS = ["http://bypass-1:6443"]
ETCD = ["http://etcd-1:2379", "http://etcd-2:2379", "http://etcd-3:2379"]
REJECTED = ("sum by (flow_schema, priority_level) (rate(apiserver_flowcontrol_rejected_requests_total[1m])) "
            "or sum by (flow_schema, priority_level) (max_over_time(apiserver_flowcontrol_rejected_requests_total[1m]) "
            "unless apiserver_flowcontrol_rejected_requests_total offset 1m) / 60")
INQUEUE = "sum by (flow_schema, priority_level) (apiserver_flowcontrol_current_inqueue_requests)"
DUMP = """PriorityLevelName, FlowSchemaName, QueueIndex, RequestIndexInQueue, FlowDistingsher, ArriveTime, InitialSeats, FinalSeats, AdditionalLatency, StartTime, UserName, Verb, APIPath, Namespace, Name, APIVersion, Resource, SubResource
"""

LIB = Library.load()


def dump(rows: dict[str, tuple[int, int]]) -> str:
    """A dump with ``user -> (queued, executing)`` rows."""
    lines = [DUMP.strip()]
    for user, (queued, executing) in rows.items():
        for i in range(queued + executing):
            waiting = i < queued
            lines.append(f"workload-low, service-accounts, {0 if waiting else -1}, {i if waiting else -1}, {user}, "
                         f"2026-11-25T03:00:00Z, 1, 1, 0s, {'0001-01-01T00:00:00Z' if waiting else '2026-11-25T03:00:00Z'}, "
                         f"{user}, list, /api/v1/pods, , , v1, pods, ")
    return "\n".join(lines) + "\n"


@pytest.fixture
def world() -> dict:
    prom = FakePrometheus()
    kube = FakeKubernetes()
    etcd = FakeEtcd(tuple(ETCD))
    http = FakeHttp({u + "/readyz": 200 for u in MAIN + BYPASS})
    access = ClusterAccess("prod-1", cluster_config(main=MAIN, bypass=BYPASS, etcd=ETCD), metrics=prom,
                           kubernetes=kube, etcd=etcd, http=http)
    return {"prom": prom, "kube": kube, "etcd": etcd, "http": http, "access": access, "sleeps": []}


def run(world: dict, name: str):
    incident = {"id": 1, "ref": "INC-1", "title": "t", "cluster": "prod-1", "component": None, "labels": {},
                "alerts": [], "alert_names": []}
    return Runner(world["access"], FakeClock(T0), check_timeout=2, sleep=world["sleeps"].append).run(
        LIB.get(name), incident)


def test_one_client_flooding_the_apiserver_is_throttled(world: dict) -> None:
    world["prom"].set(REJECTED, [({"flow_schema": "service-accounts", "priority_level": "workload-low"}, 20.0)])
    world["kube"].dump_text = dump({"system:serviceaccount:ci:robot": (20, 20), "alice": (0, 2)})
    outcome = run(world, "apiserver-overload")
    assert outcome.conclusion.id == "throttle"
    assert outcome.playbook == "throttle-client"
    assert outcome.params == {"subject": "system:serviceaccount:ci:robot"}
    assert "system:serviceaccount:ci:robot holds 95% of the requests in flight" in outcome.cause
    assert [s.node for s in outcome.path] == ["overloaded", "one_client"]


def test_overload_without_a_dominant_client_escalates(world: dict) -> None:
    world["prom"].set(INQUEUE, [({"flow_schema": "global-default"}, 50.0)])
    world["kube"].dump_text = dump({"a": (5, 5), "b": (5, 5), "c": (5, 5)})
    outcome = run(world, "apiserver-overload")
    assert (outcome.conclusion.id, outcome.escalate, outcome.playbook) == ("many_clients", True, None)


def test_no_rejections_and_no_queues_is_not_an_overload(world: dict) -> None:
    world["kube"].dump_text = dump({"bob": (0, 3)})
    outcome = run(world, "apiserver-overload")
    assert (outcome.conclusion.id, outcome.escalate, [s.verdict for s in outcome.path]) == (
        "not_overloaded", True, ["else"])
    # confirmed before concluding: the fast alert may open the incident on a rejection counter's first sample
    assert outcome.checks[0].evidence["attempts"] == 4 and world["sleeps"] == [1.0, 1.0, 1.0]


def test_prometheus_down_takes_the_unknown_branch_to_the_dump(world: dict) -> None:
    world["prom"].down = True
    world["kube"].dump_text = dump({"bob": (30, 10)})
    outcome = run(world, "apiserver-overload")
    assert outcome.path[0].verdict == "unknown" and "unreachable" in outcome.path[0].reason
    assert outcome.conclusion.id == "throttle_from_dump" and outcome.params == {"subject": "bob"}
    world["kube"].dump_text = ""
    assert run(world, "apiserver-overload").conclusion.id == "escalate_unknown"


def test_a_prometheus_timeout_is_an_unknown_not_a_crash(world: dict) -> None:
    world["prom"].set(REJECTED, PrometheusTimeout("Prometheus did not answer within 2s", url="x", query=REJECTED))
    outcome = run(world, "apiserver-overload")
    rejected = outcome.checks[0]
    assert (rejected.known, rejected.error) == (False, "Prometheus did not answer within 2s")
    assert outcome.path[0].verdict == "unknown"


def test_main_apiservers_down_with_bypass_ready_fail_over(world: dict) -> None:
    for url in MAIN:
        world["http"].statuses[url + "/readyz"] = 500
    outcome = run(world, "apiserver-unavailable")
    assert (outcome.conclusion.id, outcome.playbook, outcome.params) == ("failover", "failover-apiserver",
                                                                         {"mode": "drain"})
    assert "2/2 fail /readyz" in outcome.cause and "1/1 bypass apiservers are ready" in outcome.cause


def test_apiservers_down_because_etcd_lost_quorum_restore_etcd(world: dict) -> None:
    for url in MAIN + BYPASS:
        world["http"].statuses.pop(url + "/readyz")
    world["etcd"].down = set(ETCD[:2])
    outcome = run(world, "apiserver-unavailable")
    assert (outcome.conclusion.id, outcome.playbook) == ("etcd_lost", "restore-etcd")
    assert "0/3 members healthy, NO QUORUM, no leader" in outcome.cause


@pytest.mark.parametrize(("down", "alarms", "hashes", "conclusion", "playbook"), [
    (ETCD[:2], [], {}, "quorum_lost", "restore-etcd"),
    ([], ["CORRUPT"], {}, "corrupt", "restore-etcd"),
    ([], [], {ETCD[2]: 1}, "corrupt", "restore-etcd"),
    (ETCD[2:], [], {}, "one_member_down", None),
    ([], [], {}, "healthy_now", None),
])
def test_etcd_conclusions(world: dict, down: list, alarms: list, hashes: dict, conclusion: str,
                          playbook: str | None) -> None:
    world["etcd"].down, world["etcd"].alarms_raised, world["etcd"].hashes = set(down), alarms, hashes
    outcome = run(world, "etcd-health")
    assert (outcome.conclusion.id, outcome.playbook, outcome.escalate) == (conclusion, playbook, playbook is None)


def test_one_member_down_names_it_and_keeps_the_evidence(world: dict) -> None:
    world["etcd"].down = {ETCD[2]}
    outcome = run(world, "etcd-health")
    assert ETCD[2] in outcome.cause and "quorum holds" in outcome.cause
    assert {c.id: c.known for c in outcome.checks}["hashkv"] is False  # a dead member: hashkv is unknown


def test_triage_escalates_when_nothing_known_is_wrong(world: dict) -> None:
    outcome = run(world, "control-plane-triage")
    assert (outcome.conclusion.id, outcome.escalate) == ("nothing_known", True)
    assert all(c.known for c in outcome.checks)


def electing(etcd: Any, rounds: list[bool]) -> None:
    """The members answer with no leader while ``rounds`` says so, one ``cluster_summary`` at a time."""
    answers = iter(rounds)
    real = etcd.cluster_summary

    def summary():  # type: ignore[no-untyped-def]
        etcd.electing = next(answers, False)
        return real()

    etcd.cluster_summary = summary


def test_a_leader_election_is_not_a_lost_quorum(world: dict) -> None:
    electing(world["etcd"], [True, True, False])  # every member answers with no leader twice, then one is elected
    outcome = run(world, "etcd-health")
    health = outcome.checks[0]
    assert health.evidence["attempts"] == 3 and health.summary.endswith("(answer 3 of 4)")
    assert world["sleeps"] == [0.5, 0.5]
    assert outcome.conclusion.id == "healthy_now"


def test_a_lost_quorum_is_confirmed_before_a_restore_is_proposed(world: dict) -> None:
    world["etcd"].hanging = set(ETCD[:2])  # a partition: the members may be alive, an election may yet come
    outcome = run(world, "etcd-health")
    assert outcome.checks[0].evidence["attempts"] == 4 and len(world["sleeps"]) == 3
    # the pauses are the bot's own time: recorded, so a drill's scorecard books them to the bot
    assert outcome.checks[0].evidence["slept_seconds"] == sum(world["sleeps"])
    assert outcome.conclusion.id == "quorum_lost"


def test_a_majority_refusing_connections_is_a_lost_quorum_at_the_first_answer(world: dict) -> None:
    """No etcd process listens on two of three ports: no election brings quorum back, so no pause to confirm it."""
    world["etcd"].down = set(ETCD[:2])
    outcome = run(world, "etcd-health")
    assert outcome.checks[0].evidence["attempts"] == 1 and world["sleeps"] == []
    assert (outcome.conclusion.id, outcome.playbook) == ("quorum_lost", "restore-etcd")
    assert outcome.checks[0].evidence["members_refusing"] == 2


def test_one_member_refusing_connections_still_waits_out_an_election(world: dict) -> None:
    world["etcd"].down = {ETCD[2]}
    electing(world["etcd"], [True, False])
    outcome = run(world, "etcd-health")
    assert outcome.checks[0].evidence["attempts"] == 2 and world["sleeps"] == [0.5]
    assert outcome.conclusion.id == "one_member_down"


def test_a_lost_quorum_concludes_without_waiting_for_checks_against_dead_members(world: dict) -> None:
    """alarms and hashkv against dead members wait out their dial timeouts; `health` already decides."""
    etcd, answer = world["etcd"], threading.Event()
    etcd.down = set(ETCD[:2])
    asking = {"alarms": threading.Event(), "hashkv": threading.Event()}
    real_alarms, real_hashkv, real_summary = etcd.alarms, etcd.hashkv, etcd.cluster_summary

    def stuck(name, real):  # type: ignore[no-untyped-def]  # asking a dead member: no answer until `answer`
        return lambda *a, **k: (asking[name].set(), answer.wait(10), real(*a, **k))[2]

    etcd.alarms, etcd.hashkv = stuck("alarms", real_alarms), stuck("hashkv", real_hashkv)  # type: ignore[method-assign]
    # health answers once both are asking, so they are surely in flight when it decides
    etcd.cluster_summary = lambda: (asking["alarms"].wait(10), asking["hashkv"].wait(10), real_summary())[2]
    heard: list[tuple[str, bool]] = []
    late = {"alarms": threading.Event(), "hashkv": threading.Event()}

    def on_check(result) -> None:  # type: ignore[no-untyped-def]
        heard.append((result.id, result.late))
        if result.late and result.id in late:
            late[result.id].set()

    incident = {"id": 1, "ref": "INC-1", "title": "t", "cluster": "prod-1", "component": "etcd", "labels": {},
                "alerts": [], "alert_names": []}
    outcome = Runner(world["access"], FakeClock(T0), check_timeout=2, sleep=world["sleeps"].append).run(
        LIB.get("etcd-health"), incident, on_check=on_check)
    assert (outcome.conclusion.id, outcome.playbook) == ("quorum_lost", "restore-etcd")
    assert {"alarms", "hashkv"} <= set(outcome.pending)  # still asking dead members when it concluded
    assert {"alarms", "hashkv"} <= set(outcome.data()["concluded_before"])
    answer.set()  # the dead members' calls give up: their answers are kept as late evidence
    assert late["alarms"].wait(10) and late["hashkv"].wait(10)
    assert ("health", False) in heard
