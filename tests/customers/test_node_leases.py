"""Hollow nodes heartbeat through Leases in kube-node-lease, as kubelets do, on the real control plane.

One sandbox with the customer cluster (real kube-apiserver, kube-controller-manager, kube-scheduler,
two kwok groups). What a cluster operator would check: every node has its Lease, owned by its Node
and renewed again and again by kwok; a node's status is not re-posted meanwhile, so Ready is kept by
the Leases alone; a pod runs on a hollow node (kwok manages the nodes whose Lease it holds); and when
one group's kwok stops (what the nodes-not-ready drill does), exactly that group's Leases go stale and
the node lifecycle controller marks exactly those nodes NotReady, with the reason it gives for a
silent kubelet.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.compose.sandbox.controlplane import ControlPlane, ControlPlaneOptions
from bot.compose.sandbox.customers import CustomerOptions, ready_nodes
from bot.compose.sandbox.processes import wait_until
from integrations.clients.probes.customer import run_pod_probe

LEASE_SECONDS = 8  # renewed every 2 s
NODES = 4


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    root: Path = tmp_path_factory.mktemp("node-leases")
    options = ControlPlaneOptions(etcd_members=1, main_apiservers=1, bypass_apiservers=1, customers=True,
                                  customer=CustomerOptions(nodes=NODES, node_groups=2, node_lease_seconds=LEASE_SECONDS,
                                                           node_monitor_grace_seconds=12))
    control = ControlPlane(root, webhook_url="http://127.0.0.1:9/unused", webhook_token="unused", options=options)
    control.start()
    try:
        yield control
    finally:
        control.close()


def _leases(plane: ControlPlane) -> dict[str, dict[str, Any]]:
    admin = plane.admin()
    try:
        return {lease["metadata"]["name"]: lease
                for lease in admin.list_objects("coordination.k8s.io/v1", "Lease", "kube-node-lease")}
    finally:
        admin.close()


def _renewed(lease: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))


def test_every_hollow_node_has_a_lease_owned_by_its_node_and_renewed(plane: ControlPlane) -> None:
    assert plane.customers is not None
    nodes = sorted(n for names in plane.customers.groups.values() for n in names)
    first = wait_until(lambda: (found := _leases(plane)) and set(nodes) <= set(found) and found,
                       timeout=30, interval=0.5, what="a Lease per node")
    for name in nodes:
        spec = first[name]["spec"]
        assert spec["leaseDurationSeconds"] == LEASE_SECONDS
        assert spec["holderIdentity"], f"Lease of {name} has no holder"
        owners = first[name]["metadata"].get("ownerReferences") or []
        assert [(o["kind"], o["name"]) for o in owners] == [("Node", name)], "the Node owns its Lease (as a kubelet's)"

    # renewed by kwok: every Lease's renewTime moves forward, the holder stays the same
    later = wait_until(lambda: (now := _leases(plane)) and all(_renewed(now[n]) > _renewed(first[n]) for n in nodes)
                       and now, timeout=4 * LEASE_SECONDS, interval=0.5, what="every Lease renewed")
    assert {later[n]["spec"]["holderIdentity"] for n in nodes} == {first[n]["spec"]["holderIdentity"] for n in nodes}


def test_ready_is_kept_by_the_leases_and_a_pod_runs_on_a_hollow_node(plane: ControlPlane) -> None:
    admin = plane.admin()
    try:
        assert len(ready_nodes(admin)) == NODES
        # status is re-posted every 5-10 min only: the lifecycle controller's grace (12 s) is far shorter,
        # so what keeps the nodes Ready beyond it is the Leases
        admin.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lease-probe"}},
                            exist_ok=True)
        stages = run_pod_probe(admin, "lease-probe", deadline_seconds=30)
    finally:
        admin.close()
    assert stages.node is not None and stages.node.startswith("hollow-")
    assert stages.running is not None


def test_stopping_one_group_stops_its_leases_and_only_its_nodes_go_not_ready(plane: ControlPlane) -> None:
    assert plane.customers is not None
    group = sorted(plane.customers.groups)[-1]
    silenced = set(plane.customers.groups[group])
    plane.customers.components[f"kwok-{group}"].stop()
    try:
        stopped_at = _leases(plane)
        admin = plane.admin()
        try:
            wait_until(lambda: not silenced & set(ready_nodes(admin)), timeout=60, interval=1,
                       what=f"the nodes of group {group} to be NotReady")
            ready = set(ready_nodes(admin))
            reasons = {}
            for node in admin.list_objects("v1", "Node"):
                if node["metadata"]["name"] in silenced:
                    cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
                    reasons[node["metadata"]["name"]] = (cond["status"], cond["reason"])
        finally:
            admin.close()
        assert ready == set(plane.customers.groups[sorted(plane.customers.groups)[0]]), "the other group stays Ready"
        assert set(reasons.values()) == {("Unknown", "NodeStatusUnknown")}, reasons
        now = _leases(plane)
        for name in silenced:
            assert _renewed(now[name]) == _renewed(stopped_at[name]), f"the Lease of {name} was renewed after its kwok stopped"
        assert all(_renewed(now[n]) > _renewed(stopped_at[n]) for n in ready), "the running group keeps renewing"
    finally:
        plane.customers.components[f"kwok-{group}"].start()


def test_the_probe_check_runs_pod_statefulset_and_bypass_probes_as_the_bot(plane: ControlPlane) -> None:
    """What the diagnosis' ``probe`` checks answer on a healthy cluster, with the bot's own RBAC."""
    from bot.compose.app.customer_probes import CustomerProbes
    from integrations.clients.kubernetes import connect

    bypass = [s.url for s in plane.bypass.values()]

    def through(url: str) -> Any:
        def make() -> Any:
            client = connect(str(plane.kubeconfig), timeout=10.0)
            client.api_client.configuration.host = url
            return client
        return make

    probes = CustomerProbes(connect(str(plane.kubeconfig), timeout=10.0), "incident-bot-probe", replicas=2,
                            bypass=[(url, through(url)) for url in bypass])
    try:
        [pod] = probes.run("pod", deadline_seconds=20)
        assert pod.ok, pod.detail
        assert pod.node and pod.node.startswith("hollow-") and pod.stages["running"] is not None
        [sts] = probes.run("statefulset", deadline_seconds=30)
        assert sts.ok, sts.detail
        assert sts.detail.startswith("2 replicas ready in ") and ", back to 0 in " in sts.detail
        [again] = probes.run("statefulset", deadline_seconds=30)  # the StatefulSet exists now: scaled, not created
        assert again.ok, again.detail
        writes = probes.run("bypass", deadline_seconds=10)
        assert [(w.target, w.ok) for w in writes] == [(f"write-path incident-bot-probe via {u}", True) for u in bypass]
    finally:
        probes.close()
