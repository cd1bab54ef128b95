"""A cluster customers can use: scheduler, controller-manager and hollow nodes in the sandbox.

``ControlPlaneOptions(customers=True)`` adds, on top of etcd and the apiservers:

* ``kube-controller-manager`` and ``kube-scheduler`` from the same pinned ``k8s.io/kubernetes``
  module, each with leader election on and its own static-token identity
  (``system:kube-controller-manager`` / ``system:kube-scheduler``: the bootstrap RBAC the
  apiserver creates is bound to exactly these names), through the load balancer as the bot is;
* simulated nodes from kwok (``sigs.k8s.io/kwok``, Kubernetes SIGs' scalability tool): Node
  objects that the sandbox registers and kwok keeps alive as kubelets do, through a Lease per
  node in ``kube-node-lease`` renewed every quarter of ``node_lease_seconds`` (the status itself
  is re-posted only every 5-10 min), and whose bound pods it turns Running (kwok's own Stage
  objects, ``data/kwok-stages.yaml``). The nodes are split into groups, one kwok process per
  group, so a drill can stop one group's Leases (``nodes-not-ready``) while the rest stay Ready.

  kwok's Lease mode keeps a cache of the Leases through a list+watch of ``kube-node-lease``,
  which the bootstrap ``system:node`` role does not allow (a kubelet only gets, creates and
  updates its own Lease). Without it kwok creates each Lease, never sees it, never renews it and
  treats the node as someone else's (its pods are ignored): the Role ``kwok-node-leases`` grants
  exactly that list and watch.

kwok authenticates in group ``kwok-nodes``, bound to the bootstrap ``system:node`` role (what a
kubelet may do); the node lifecycle controller is tuned to notice a silent node in ~20 s.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from bot.core import binaries
from bot.compose.sandbox import cluster_setup
from bot.compose.sandbox.components import ComponentProcess, LocalComponents, https_health
from bot.compose.sandbox.kube_apiserver import write_kubeconfig
from bot.compose.sandbox.pki import ClusterPKI, StaticUser
from bot.compose.sandbox.processes import free_port, wait_until



class HostPlane(Protocol):
    """What the customer cluster uses of the control plane it joins (``bot.compose.sandbox.controlplane.ControlPlane``).

    Named here so that this module need not import the control plane that builds it.
    """

    @property
    def root(self) -> Path: ...

    @property
    def pki(self) -> ClusterPKI | None: ...

    @property
    def cluster(self) -> str: ...

    @property
    def apiserver_url(self) -> str: ...

    def admin(self) -> Any: ...

CONTROLLER_MANAGER_USER = StaticUser("system:kube-controller-manager", ("system:authenticated",))
SCHEDULER_USER = StaticUser("system:kube-scheduler", ("system:authenticated",))
KWOK_USER = StaticUser("kwok-controller", ("kwok-nodes", "system:authenticated"))
CUSTOMER_USERS = (CONTROLLER_MANAGER_USER, SCHEDULER_USER, KWOK_USER)

SCHEDULER = "kube-scheduler"
CONTROLLER_MANAGER = "kube-controller-manager"
NODE_GROUP_LABEL = "incident-bot.dev/node-group"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class CustomerOptions:
    """How big the simulated cluster is and how fast node failures show."""

    nodes: int = 20
    node_groups: int = 2  # one kwok process each; nodes-not-ready silences one group
    node_monitor_grace_seconds: int = 20  # the node lifecycle controller's patience
    leader_lease_seconds: int = 8  # scheduler/controller-manager leader election
    node_lease_seconds: int = 20  # a node's Lease, renewed every quarter of it (a kubelet: 40 s)


def kwok_stages() -> str:
    return (resources.files("bot.compose.sandbox") / "data" / "kwok-stages.yaml").read_text()


def node_manifest(name: str, group: str) -> dict[str, Any]:
    """A node as a kubelet would register it (capacity for ~110 pods), managed by kwok."""
    resources_ = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {KWOK_ANNOTATION: "fake"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok", NODE_GROUP_LABEL: group}},
            "status": {"allocatable": resources_, "capacity": resources_,
                       "nodeInfo": {"kubeletVersion": "fake", "operatingSystem": "linux", "architecture": "amd64"}}}


KWOK_BINDING = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "kwok-nodes"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kwok-nodes"}]}


# kwok's Lease cache lists and watches kube-node-lease (see the module docstring)
KWOK_LEASE_READER = (
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "kwok-node-leases", "namespace": "kube-node-lease"},
     "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "watch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "kwok-node-leases", "namespace": "kube-node-lease"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kwok-node-leases"},
     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kwok-nodes"}]},
)


class CustomerCluster:
    """The scheduler, the controller-manager and the kwok groups of one sandbox."""

    def __init__(self, plane: HostPlane, options: CustomerOptions) -> None:
        self.plane = plane
        self.options = options
        self.root = plane.root / "customers"
        self.components = LocalComponents()
        self.groups: dict[str, list[str]] = {}
        self._stack = contextlib.ExitStack()

    def _kubeconfig(self, user: StaticUser) -> Path:
        assert self.plane.pki is not None
        path = self.root / f"{user.name.replace(':', '-')}.kubeconfig"
        return write_kubeconfig(path, server=self.plane.apiserver_url, pki=self.plane.pki, user=user.name,
                                context=self.plane.cluster)

    def start(self) -> "CustomerCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        self._stack.callback(self.components.close)
        admin = self.plane.admin()
        try:
            cluster_setup.apply_all(admin, [KWOK_BINDING, *KWOK_LEASE_READER])
            self._add_controller_manager().start()
            self._add_scheduler().start()
            self._register_nodes(admin)
            for group in self.groups:
                self._add_kwok(group).start()
            self.wait_nodes_ready(admin, self.options.nodes)
        finally:
            admin.close()
        return self

    def _add_controller_manager(self) -> ComponentProcess:
        assert self.plane.pki is not None
        pki, port, o = self.plane.pki, free_port(), self.options
        kubeconfig = self._kubeconfig(CONTROLLER_MANAGER_USER)
        args = [binaries.require(CONTROLLER_MANAGER), f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={port}", f"--cert-dir={self.root / 'kcm-certs'}",
                "--leader-elect=true", f"--leader-elect-lease-duration={o.leader_lease_seconds}s",
                f"--leader-elect-renew-deadline={max(2, o.leader_lease_seconds * 3 // 4)}s",
                "--leader-elect-retry-period=1s",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_private}", f"--root-ca-file={pki.ca_cert}",
                "--node-monitor-period=2s", f"--node-monitor-grace-period={o.node_monitor_grace_seconds}s",
                "--kube-api-qps=50", "--kube-api-burst=100", "--profiling=false", "--v=1"]
        return self.components.add(ComponentProcess(CONTROLLER_MANAGER, lambda: args, self.root / "kcm",
                                                    health_url=https_health(port)))

    def _add_scheduler(self) -> ComponentProcess:
        port, o = free_port(), self.options
        kubeconfig = self._kubeconfig(SCHEDULER_USER)
        args = [binaries.require(SCHEDULER), f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={port}", f"--cert-dir={self.root / 'scheduler-certs'}",
                "--leader-elect=true", f"--leader-elect-lease-duration={o.leader_lease_seconds}s",
                f"--leader-elect-renew-deadline={max(2, o.leader_lease_seconds * 3 // 4)}s",
                "--leader-elect-retry-period=1s", "--profiling=false", "--v=1"]
        return self.components.add(ComponentProcess(SCHEDULER, lambda: args, self.root / "scheduler",
                                                    health_url=https_health(port)))

    def _add_kwok(self, group: str) -> ComponentProcess:
        config = self.root / "kwok-stages.yaml"
        if not config.exists():
            config.write_text(kwok_stages())
        kubeconfig = self._kubeconfig(KWOK_USER)
        args = [binaries.require("kwok"), f"--kubeconfig={kubeconfig}", f"--config={config}",
                f"--manage-nodes-with-label-selector={NODE_GROUP_LABEL}={group}",
                f"--node-lease-duration-seconds={self.options.node_lease_seconds}",
                "--cidr=10.0.0.1/16", "--node-ip=10.1.0.1", f"--server-address=127.0.0.1:{free_port()}"]
        return self.components.add(ComponentProcess(f"kwok-{group}", lambda: args, self.root / f"kwok-{group}"))

    def _register_nodes(self, admin: Any) -> None:
        groups = max(1, self.options.node_groups)
        for i in range(self.options.nodes):
            group = f"g{i % groups + 1}"
            name = f"hollow-{i + 1:03d}"
            self.groups.setdefault(group, []).append(name)
            admin.create_object(node_manifest(name, group), exist_ok=True)

    def wait_nodes_ready(self, admin: Any, count: int, timeout: float = 60.0) -> None:
        wait_until(lambda: len(ready_nodes(admin)) >= count, timeout=timeout, interval=0.5,
                   what=f"{count} simulated nodes to be Ready")

    def close(self) -> None:
        self._stack.close()


def ready_nodes(admin: Any) -> list[str]:
    """Names of the nodes whose Ready condition is True."""
    names = []
    for node in admin.list_objects("v1", "Node"):
        for condition in (node.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                names.append(node["metadata"]["name"])
    return names
