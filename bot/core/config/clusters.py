"""Where a cluster's parts answer (``clusters.NAME``): apiservers, load balancer, etcd, components.

Diagnosis checks read these endpoints and the playbooks act on them (failover at HAProxy,
restore-etcd, restarting a component), so they are declared once per cluster here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.core.config.base import Section


class ApiserverGroups(Section):
    """The apiserver URLs of a cluster: the main group and the bypass (side-path) group."""

    main: list[str] = Field(default_factory=list)
    bypass: list[str] = Field(default_factory=list)
    ca_cert: str | None = None  # the CA that signed their serving certificates (default: the system's)


class LoadBalancerSettings(Section):
    """The load balancer in front of a cluster's apiservers (HAProxy runtime API), for failover/failback."""

    kind: Literal["haproxy"] = "haproxy"
    runtime: str | None = None  # admin socket path, or HOST:PORT of a TCP stats socket (level admin)
    backend: str = "kube_api_servers"
    main: list[str] = Field(default_factory=list)  # server names of the main apiservers in the backend
    bypass: list[str] = Field(default_factory=list)  # server names of the bypass (standby) apiservers
    state_file: str | None = None  # the global server-state-file: runtime changes survive a reload
    frontend_url: str | None = None  # the LB's address as clients use it, e.g. https://10.0.0.10:6443
    server_scheme: Literal["http", "https"] = "https"  # how to reach a server directly for /readyz
    ready_path: str = "/readyz"
    verify_tls: bool = False  # the bypass certificate rarely names the server's own address
    probe_timeout_seconds: float = Field(3, gt=0)
    verify_requests: int = Field(5, ge=1)  # requests sent through the LB to verify a failover


class EtcdMemberSettings(Section):
    """One etcd member as the restore needs it: name, URLs, data dir (and host for command templates)."""

    name: str
    client_url: str
    peer_url: str
    data_dir: str
    metrics_url: str | None = None
    host: str | None = None


class EtcdRestoreSettings(Section):
    """How restore-etcd stops, restores and starts members, and cuts the apiservers off meanwhile."""

    members: list[EtcdMemberSettings] = Field(default_factory=list)
    controller: Literal["local", "command"] = "local"  # local: child processes (sandbox, tests)
    start_command: str | None = None  # command templates: {name} {host} {data_dir} {client_url} ...
    stop_command: str | None = None
    is_running_command: str | None = None
    command_timeout_seconds: float = Field(60, gt=0)
    etcd_binary: str | None = None  # default: the etcd setup builds (bot.core.binaries), else $PATH
    data_root: str | None = None  # where restored data dirs go; default: beside each member's data dir
    apiservers: Literal["lb", "command", "none"] = "lb"  # how to cut the apiservers off during the restore
    apiservers_stop_command: str | None = None
    apiservers_start_command: str | None = None
    health_timeout_seconds: float = Field(60, gt=0)


class EtcdSnapshotSettings(Section):
    """The backup catalogue: where snapshots go, how often the worker takes one, how many to keep."""

    dir: str | None = None
    interval_seconds: float = Field(0, ge=0)  # 0: no scheduled snapshots
    keep: int = Field(24, ge=1)
    timeout_seconds: float = Field(300, gt=0)


class EtcdEndpoints(Section):
    members: list[str] = Field(default_factory=list)  # client URLs, one per member
    etcdctl: str | None = None  # default: on PATH
    etcdutl: str | None = None  # default: next to etcdctl or on PATH (3.5+)
    snapshots: EtcdSnapshotSettings = EtcdSnapshotSettings()
    restore: EtcdRestoreSettings = EtcdRestoreSettings()


class ComponentSettings(Section):
    """A control-plane component the playbooks may restart (``clusters.NAME.components.kube-scheduler``).

    ``controller: command`` runs the templates (``{component}`` is replaced, shell-quoted), e.g.
    ``ssh cp-1 systemctl restart {component}``; ``local`` is the sandbox's own child processes.
    """

    health_urls: list[str] = Field(default_factory=list)  # e.g. https://10.0.0.1:10259/healthz
    lease: str | None = None  # its leader-election Lease, NAMESPACE/NAME (kube-system/kube-scheduler)
    controller: Literal["local", "command"] = "command"
    start_command: str | None = None
    stop_command: str | None = None
    is_running_command: str | None = None
    command_timeout_seconds: float = Field(60, gt=0)


class ClusterEndpoints(Section):
    """Where a cluster's parts answer: used by diagnosis checks and playbooks (``clusters.NAME``)."""

    prometheus_url: str | None = None  # default: the top-level PROMETHEUS_URL
    kubeconfig: str | None = None  # default: the top-level KUBECONFIG
    kube_context: str | None = None
    apiservers: ApiserverGroups = ApiserverGroups()
    etcd: EtcdEndpoints = EtcdEndpoints()
    loadbalancer: LoadBalancerSettings = LoadBalancerSettings()  # read by failover/failback and restore-etcd
    components: dict[str, ComponentSettings] = Field(default_factory=dict)  # restartable by playbooks
    drill_target: bool = False  # fault drills may break this cluster (never set it on a production cluster)
