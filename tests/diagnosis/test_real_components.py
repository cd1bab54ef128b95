"""The shipped procedures against real parts: Prometheus scraping a real etcd cluster and the
apiserver stand-in's /metrics, the stand-in's Kubernetes API (APF dump), real /readyz probes.

One Prometheus (1 s scrape), one etcd cluster and one stand-in serve the whole module; tests that
break etcd get their own cluster.  "Prometheus down" is a Prometheus URL nobody answers on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.diagnosis import RealBackends
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config.clusters import ApiserverGroups, ClusterEndpoints, EtcdEndpoints
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.diagnosis.runner import Outcome, Runner
from bot.core.store.models import PlaybookRun
from integrations.clients.etcd import EtcdClient
from integrations.clients.kubernetes import KubernetesClient
from integrations.clients.prometheus import PrometheusClient
from tests.conftest import T0, make_settings
from tests.support.apiserver import ApiServerStandIn
from tests.support.components import EtcdCluster, Prometheus, StubApiserver, free_port
from tests.support.waiting import wait_for

LIB = Library.load()
ROBOT = "system:serviceaccount:ci:robot"


@pytest.fixture(scope="module")
def standin() -> Iterator[ApiServerStandIn]:
    with ApiServerStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def prometheus(standin: ApiServerStandIn, etcd: EtcdCluster) -> Iterator[Prometheus]:
    target = standin.url.split("://", 1)[1]
    with Prometheus({"etcd": etcd.metrics_targets, "apiserver": [target]}) as prom:
        wait_for(lambda: len([r for r in prom.query("up == 1")]) == 4, "the first scrape of etcd and the stand-in")
        yield prom


@pytest.fixture(scope="module")
def groups() -> Iterator[dict[str, list[StubApiserver]]]:
    servers = {"main": [StubApiserver("main-1").start(), StubApiserver("main-2").start()],
               "bypass": [StubApiserver("bypass-1").start()]}
    yield servers
    for group in servers.values():
        for s in group:
            s.close()


@pytest.fixture
def flood(standin: ApiServerStandIn, prometheus: Prometheus) -> Iterator[dict]:
    """The CI robot floods the apiserver; Prometheus sees APF rejecting before the test runs."""
    standin.clear_metrics()
    standin.clear_inflight()
    info = standin.flood(ROBOT, requests=40, rate=200, rejected_rate=20)
    wait_for(lambda: prometheus.query(
        "sum(rate(apiserver_flowcontrol_rejected_requests_total[1m])) > 1"), "Prometheus to see the rejections")
    yield info
    standin.clear_metrics()
    standin.clear_inflight()


def access(standin: ApiServerStandIn, groups: dict, etcd: EtcdCluster, prometheus_url: str) -> ClusterAccess:
    config = {"name": "prod-1", "apiservers": {g: [s.url for s in servers] for g, servers in groups.items()},
              "etcd": {"members": etcd.endpoints}}
    return ClusterAccess("prod-1", config, metrics=PrometheusClient(prometheus_url, timeout=3),
                         kubernetes=KubernetesClient.from_host(standin.url, "standin-admin-token", timeout=3),
                         etcd=lambda eps: EtcdClient(eps, timeout=2.0))


def run(acc: ClusterAccess, name: str) -> Outcome:
    incident = {"id": 1, "ref": "INC-1", "title": "t", "cluster": "prod-1", "component": None, "labels": {},
                "alerts": [], "alert_names": []}
    return Runner(acc, FakeClock(T0), check_timeout=5).run(LIB.get(name), incident)


def dead_prometheus() -> str:
    return f"http://127.0.0.1:{free_port()}"


# ---------------------------------------------------------------- apiserver overloaded by one client
def test_one_client_flooding_is_found_in_apf_metrics_and_the_dump(standin, groups, etcd, prometheus, flood) -> None:
    outcome = run(access(standin, groups, etcd, prometheus.url), "apiserver-overload")
    assert [(s.node, s.verdict) for s in outcome.path] == [("overloaded", "then"), ("one_client", "then")]
    assert (outcome.conclusion.id, outcome.playbook, outcome.params) == ("throttle", "throttle-client", {"subject": ROBOT})
    rejected = outcome.checks[0]
    assert rejected.known and rejected.facts["sum"] > 1
    assert rejected.facts["labels"]["flow_schema"] == flood["flow_schema"] == "service-accounts"
    assert rejected.evidence["query"].startswith("sum by (flow_schema, priority_level)")
    assert rejected.evidence["evaluated_at"]  # when Prometheus evaluated it
    assert f"{ROBOT} holds 100% of the requests in flight (40, 20 queued)" in outcome.cause


def test_with_prometheus_down_the_overload_path_is_unknown_and_the_dump_decides(standin, groups, etcd, prometheus,
                                                                                 flood) -> None:
    outcome = run(access(standin, groups, etcd, dead_prometheus()), "apiserver-overload")
    # the checks run concurrently and the tree concludes once its answer is determined: a Prometheus
    # query still waiting for its timeout then is not part of the decision, so which ones are recorded varies
    by_id = {c.id: c for c in outcome.checks}
    assert by_id["top_users"].known
    assert [c.id for c in outcome.checks if c.known] == ["top_users"]
    assert "is unreachable" in (by_id["rejected"].error or "")
    assert (outcome.path[0].node, outcome.path[0].verdict) == ("overloaded", "unknown")
    assert (outcome.conclusion.id, outcome.params) == ("throttle_from_dump", {"subject": ROBOT})


# ---------------------------------------------------------------- main apiservers down, bypass healthy
def test_main_group_down_and_bypass_ready_fails_over(standin, groups, etcd, prometheus) -> None:
    for s in groups["main"]:
        s.ready = False
    try:
        outcome = run(access(standin, groups, etcd, prometheus.url), "apiserver-unavailable")
    finally:
        for s in groups["main"]:
            s.ready = True
    assert (outcome.conclusion.id, outcome.playbook) == ("failover", "failover-apiserver")
    main = outcome.checks[0]
    assert [p["status"] for p in main.evidence["probes"]] == [500, 500]
    assert "and etcd is healthy (3/3 members healthy, quorum kept" in outcome.cause
    healthy = run(access(standin, groups, etcd, prometheus.url), "apiserver-unavailable")
    assert healthy.conclusion.id == "main_answers" and healthy.escalate


# ---------------------------------------------------------------- etcd
def test_etcd_healthy_then_one_member_down_then_quorum_lost(standin, groups, prometheus,
                                                            etcd_cluster_factory) -> None:
    cluster = etcd_cluster_factory(3)
    acc = access(standin, groups, cluster, prometheus.url)
    healthy = run(acc, "etcd-health")
    assert (healthy.conclusion.id, healthy.escalate) == ("healthy_now", True)
    assert all(c.known for c in healthy.checks[:3])
    unverified = run(access(standin, groups, cluster, dead_prometheus()), "etcd-health")
    assert unverified.conclusion.id == "healthy_now_unverified" and unverified.path[-1].verdict == "unknown"

    cluster.kill(2)
    one = run(acc, "etcd-health")
    assert (one.conclusion.id, one.escalate, one.playbook) == ("one_member_down", True, None)
    assert cluster.endpoints[2] in one.cause and "2/3 members healthy, quorum kept" in one.cause

    cluster.kill(1)
    lost = run(acc, "etcd-health")
    assert (lost.conclusion.id, lost.playbook) == ("quorum_lost", "restore-etcd")
    assert "etcd lost quorum: 0/3 members healthy, NO QUORUM" in lost.cause
    assert [(p.node, p.verdict) for p in lost.path[-2:]] == [("quorum", "else"), ("alarmed", "else")]
    health = lost.checks[0].evidence  # two killed members refuse connections: no pause to wait out an election
    assert (health["members_refusing"], health["attempts"]) == (2, 1)


def test_a_corrupt_alarm_means_restore(standin, groups, prometheus, etcd_cluster_factory) -> None:
    import httpx

    cluster = etcd_cluster_factory(3)
    member = httpx.post(cluster.endpoints[0] + "/v3/maintenance/status", json={}).json()["header"]["member_id"]
    httpx.post(cluster.endpoints[0] + "/v3/maintenance/alarm",
               json={"action": "ACTIVATE", "memberID": member, "alarm": "CORRUPT"}).raise_for_status()
    outcome = run(access(standin, groups, cluster, prometheus.url), "etcd-health")
    assert (outcome.conclusion.id, outcome.playbook) == ("corrupt", "restore-etcd")
    assert "a CORRUPT alarm is raised" in outcome.cause


# ---------------------------------------------------------------- the whole path, through the bot
@pytest.fixture
def wired_bot(tmp_path, standin, groups, etcd, prometheus) -> Iterator[Bot]:
    settings = make_settings(f"sqlite:///{tmp_path / 'bot.db'}")
    settings.clusters["prod-1"] = ClusterEndpoints(
        prometheus_url=prometheus.url, kubeconfig=str(standin.write_kubeconfig(tmp_path / "kubeconfig")),
        apiservers=ApiserverGroups(main=[s.url for s in groups["main"]], bypass=[s.url for s in groups["bypass"]]),
        etcd=EtcdEndpoints(members=etcd.endpoints))
    bot = build_bot(settings, clock=FakeClock(T0))
    assert isinstance(bot.services.extras["diagnoser"].backends, RealBackends)
    yield bot
    bot.close()


def test_an_announced_overload_incident_is_diagnosed_with_the_real_clients(wired_bot: Bot, flood) -> None:
    chat = MemoryChat(wired_bot.dispatcher, workers=wired_bot.workers)
    chat.say("alice", "/incident declare apiserver slow --cluster prod-1 --severity sev1")
    chat.pump()
    incident = wired_bot.services.incidents.get("INC-1")
    events = wired_bot.services.incidents.timeline("INC-1")[1]
    started = next(e for e in events if e.kind == "diagnosis.started")
    assert started.data["procedure"] == "control-plane-triage"  # a declared incident: no alert to match
    assert incident.state == "diagnosed", [e.text for e in events if e.kind.startswith("diagnosis")]
    assert incident.root_cause.startswith(f"apiserver overloaded by one client: {ROBOT} holds 100%")
    checks = {e.data["check"]: e.data for e in events if e.kind == "diagnosis.check"}
    assert checks["rejected"]["status"] == "ok" and checks["rejected"]["query"].startswith("sum by")
    assert checks["etcd"]["has_quorum"] is True
    proposal = next(e for e in events if e.kind == "diagnosis.proposal")
    with wired_bot.db.session() as session:
        runs = session.query(PlaybookRun).all()
        assert [(r.playbook, r.state, r.requested_by) for r in runs] == [("throttle-client", "awaiting_approval",
                                                                          "diagnosis")], proposal.text
        assert proposal.text == f"RUN-{runs[0].id} planned: throttle-client, awaiting approval"
