"""Customer probes as procedure checks (kind ``probe``): what the on-call reads in the diagnosis.

The shipped ``workloads-pending`` procedure runs a probe pod itself: with the scheduler and the
controller-manager leading and every node Ready, a pod that still does not run is named with the
stage it stuck in; a pod that runs says the failure was transient. The probes run against
``FakeWorkloadCluster`` on a ticking clock (no waiting); the same check against the real
kube-scheduler and kwok nodes runs in the scheduler-down drill.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.compose.app.customer_probes import CustomerProbes
from bot.core.clock import FakeClock
from bot.domain.diagnosis.fakes import FakeHttp, cluster_config
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.loader import parse
from bot.domain.diagnosis.validation import ProcedureError
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.diagnosis.runner import Runner
from integrations.clients.kubernetes import FakeKubernetes
from integrations.clients.probes.fake_cluster import FakeWorkloadCluster
from tests.conftest import T0

NS = "incident-bot-probe"
LIB = Library.load()
INCIDENT = {"id": 1, "ref": "INC-1", "title": "pods pending", "cluster": "prod-1", "component": "workloads",
            "labels": {}, "alerts": [], "alert_names": []}


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def _lease(kube: FakeKubernetes, name: str, age: float) -> None:
    renewed = (datetime.now(timezone.utc) - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kube.create_object({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": name, "namespace": "kube-system"},
                        "spec": {"holderIdentity": f"{name}-1", "leaseDurationSeconds": 8, "renewTime": renewed}})


def world(workloads: FakeWorkloadCluster, *, scheduler_age: float = 1.0) -> tuple[ClusterAccess, Ticking]:
    tick = Ticking()
    workloads.tick = tick.sleep
    kube = FakeKubernetes()
    kube.health_status["/readyz"] = 200
    _lease(kube, "kube-scheduler", scheduler_age)
    _lease(kube, "kube-controller-manager", 1.0)
    ready = {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-30T08:00:00Z"}
    kube.raw["/api/v1/nodes"] = json.dumps({"items": [{"metadata": {"name": f"hollow-{i}"},
                                                       "status": {"conditions": [ready]}} for i in range(3)]})
    access = ClusterAccess("prod-1", cluster_config(), kubernetes=kube, http=FakeHttp({}),
                           customer=CustomerProbes(workloads, NS, monotonic=tick))
    return access, tick


def diagnose(access: ClusterAccess) -> Any:
    return Runner(access, FakeClock(T0), check_timeout=2).run(LIB.get("workloads-pending"), INCIDENT)


def test_a_pod_nobody_schedules_while_the_scheduler_leads_is_named_with_its_stage() -> None:
    access, tick = world(FakeWorkloadCluster(schedule_after=None))
    outcome = diagnose(access)
    assert outcome.conclusion.id == "pod_stuck" and outcome.escalate
    assert "a probe pod does not run: pod probe FAILS in 7.5 s: pod not scheduled within 7.5 s" in outcome.cause
    assert "no node is chosen for it" in outcome.cause
    pod = next(c for c in outcome.checks if c.id == "pod")
    assert pod.known and pod.facts["ok"] is False and pod.facts["stuck"] == "scheduling"
    assert pod.facts["stages"]["scheduled"] is None and pod.facts["seconds"] == pytest.approx(7.5)
    assert tick.now == pytest.approx(7.5), "the probe waits exactly its deadline (the check's timeout less 0.5 s)"
    assert access.customer.client.pods == {}, "the probe pod is deleted even when it never ran"  # type: ignore[union-attr]


def test_a_pod_bound_to_a_silent_node_points_at_that_node() -> None:
    access, _ = world(FakeWorkloadCluster(schedule_after=1, run_after=None))
    outcome = diagnose(access)
    assert outcome.conclusion.id == "pod_stuck"
    assert "bound to node-1 but not running: look at that node's kubelet" in " ".join(outcome.cause.split())


def test_a_pod_that_runs_now_says_the_failure_was_transient_with_its_latency() -> None:
    access, _ = world(FakeWorkloadCluster(schedule_after=2, run_after=1))
    outcome = diagnose(access)
    assert outcome.conclusion.id == "nothing_known"
    assert ("a probe pod runs now (pod probe succeeds in 0.2 s: accepted 0 ms, scheduled 100 ms on node-1, "
            "running 150 ms)") in " ".join(outcome.cause.split())
    pod = next(c for c in outcome.checks if c.id == "pod")
    assert pod.evidence["probe"] == "pod" and pod.evidence["ok"] is True
    assert access.customer.client.watches == 1, "one watch follows the pod; nothing polls"  # type: ignore[union-attr]


def test_a_stale_scheduler_lease_binds_the_restart_and_quotes_the_probe_pod() -> None:
    access, _ = world(FakeWorkloadCluster(schedule_after=None), scheduler_age=60)
    outcome = diagnose(access)
    assert (outcome.conclusion.id, outcome.playbook, outcome.params) == (
        "scheduler_stuck", "restart-component", {"component": "kube-scheduler"})
    assert "(a probe pod just now: pod probe FAILS in 7.5 s: pod not scheduled within 7.5 s" in outcome.cause


class _Bypass:
    def __init__(self, fail: bool) -> None:
        self.fail, self.closed = fail, False

    def write_probe(self, namespace: str) -> Any:
        if self.fail:
            raise RuntimeError("Kubernetes API create ConfigMap failed: cannot reach https://10.0.0.21:6443")
        return FakeKubernetes().write_probe(namespace)

    def close(self) -> None:
        self.closed = True


def test_the_bypass_probe_answers_per_apiserver_and_closes_its_clients() -> None:
    clients = {"https://10.0.0.20:6443": _Bypass(False), "https://10.0.0.21:6443": _Bypass(True)}
    tick = Ticking()
    probes = CustomerProbes(FakeWorkloadCluster(), NS, monotonic=tick,
                            bypass=[(url, lambda c=c: c) for url, c in clients.items()])
    procedure = parse(BYPASS_SOP, "bypass.yaml")
    access = ClusterAccess("prod-1", cluster_config(), customer=probes)
    outcome = Runner(access, FakeClock(T0), check_timeout=2).run(procedure, INCIDENT)
    check = outcome.checks[0]
    assert check.facts["ok"] is False and (check.facts["failed"], check.facts["total"]) == (1, 2)
    assert check.summary.startswith("bypass probe: 1/2 succeed; write-path incident-bot-probe via "
                                    "https://10.0.0.20:6443 ok")
    assert "via https://10.0.0.21:6443 FAILS: Kubernetes API create ConfigMap failed: cannot reach" in check.summary
    assert outcome.conclusion.id == "bypass_broken"
    assert all(c.closed for c in clients.values())


BYPASS_SOP = """
title: bypass path
applies_to: {components: [apiserver]}
checks:
  - id: bypass
    kind: probe
    probe: bypass
tree:
  start: works
  nodes:
    works: {when: checks.bypass.ok, then: fine, else: bypass_broken, unknown: fine}
conclusions:
  fine: {cause: "the bypass path works", escalate: true}
  bypass_broken: {cause: "{{ checks.bypass.failed }} bypass apiservers refuse writes", escalate: true}
"""


def test_a_cluster_without_customer_probes_makes_the_check_unknown_and_says_why() -> None:
    access = ClusterAccess("prod-1", cluster_config())
    outcome = Runner(access, FakeClock(T0), check_timeout=2).run(parse(BYPASS_SOP, "bypass.yaml"), INCIDENT)
    check = outcome.checks[0]
    assert not check.known
    assert check.error == ("no customer probes are configured for cluster prod-1 "
                           "(probes.clusters.prod-1.customer_probes and a kubeconfig)")


def test_an_unknown_probe_is_refused_when_the_procedure_is_loaded() -> None:
    with pytest.raises(ProcedureError) as refused:
        parse(BYPASS_SOP.replace("probe: bypass", "probe: deployment"), "bad.yaml")
    assert "`probe` must be one of pod, statefulset, bypass" in str(refused.value)


def _node_leases(kube: FakeKubernetes, ages: dict[str, float]) -> None:
    now = datetime.now(timezone.utc)
    kube.raw["/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"] = json.dumps({"items": [
        {"metadata": {"name": name},
         "spec": {"leaseDurationSeconds": 20, "holderIdentity": "kwok",
                  "renewTime": (now - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
        for name, age in ages.items()]})


def test_nodes_still_ready_whose_leases_stopped_are_escalated_as_node_side_before_they_go_not_ready() -> None:
    access, _ = world(FakeWorkloadCluster())
    kube = access.kubernetes
    assert isinstance(kube, FakeKubernetes)
    # hollow-0 renews; hollow-1 and hollow-2 missed two renewals (> half the 20 s duration), still marked Ready
    _node_leases(kube, {"hollow-0": 2.0, "hollow-1": 14.0, "hollow-2": 16.0})
    outcome = diagnose(access)
    assert outcome.conclusion.id == "nodes_silent" and outcome.escalate and outcome.playbook is None
    cause = " ".join(outcome.cause.split())
    assert cause.startswith("node-side: 2 of 3 nodes stopped heartbeating (3/3 nodes Ready; 2 still Ready but "
                            "their Leases not renewed for 14-16 s: hollow-1, hollow-2)")
    nodes = next(c for c in outcome.checks if c.id == "nodes")
    assert (nodes.facts["not_ready"], nodes.facts["silent"]) == (0, 2)
    assert [n["name"] for n in nodes.evidence["silent_nodes"]] == ["hollow-1", "hollow-2"]


def test_without_access_to_the_leases_only_not_ready_nodes_count_as_silent() -> None:
    access, _ = world(FakeWorkloadCluster())
    outcome = diagnose(access)  # the fake serves no kube-node-lease: 403/404 is not a failure of the check
    nodes = next(c for c in outcome.checks if c.id == "nodes")
    assert nodes.known and nodes.facts["leases_read"] is False and nodes.facts["silent"] == 0
    assert outcome.conclusion.id == "nothing_known"
