"""The settings of the bot a sandbox starts: its cluster, its webhook token, its people.

Written from the live control plane (ports are only known once it runs),
validated like any configuration file, and saved as ``settings.yaml`` in the
sandbox directory (the token is written there too: the directory is private
and removed on exit).  The cluster is a drill target; the engine approves
runs of drill incidents by itself (``playbooks.auto_approve_drills``) and
records them as auto-approved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.core.config import Settings
from bot.compose.sandbox.controlplane import BACKEND, ControlPlane

# the people of the sandbox: the commander on call first, then the escalation
DEFAULT_ROTA = ("drill-commander", "drill-responder", "drill-lead")


def sandbox_settings(plane: ControlPlane, *, database_url: str, webhook_token: str,
                     rota: tuple[str, ...] = DEFAULT_ROTA, fast: bool = True) -> dict[str, Any]:
    """The settings tree for the sandbox's bot (plain data: YAML-able, validated by ``build``)."""
    assert plane.etcd is not None and plane.haproxy is not None and plane.prometheus is not None
    assert plane.alertmanager is not None and plane.pki is not None
    ca_cert = str(plane.pki.ca_cert)
    main = [s.url for s in plane.main.values()]
    bypass = [s.url for s in plane.bypass.values()]
    members = [{"name": m.name, "client_url": m.client_url, "peer_url": m.peer_url,
                "data_dir": str(m.data_dir), "metrics_url": m.metrics_url} for m in plane.etcd.members]
    cluster: dict[str, Any] = {
        "prometheus_url": plane.prometheus.url,
        "kubeconfig": str(plane.kubeconfig),
        "apiservers": {"main": main, "bypass": bypass, "ca_cert": ca_cert},
        "etcd": {
            "members": plane.etcd.endpoints,
            "snapshots": {"dir": str(plane.root / "snapshots"), "interval_seconds": 3600, "keep": 5},
            "restore": {"members": members, "controller": "local", "data_root": str(plane.root / "etcd-restored"),
                        "apiservers": "lb", "health_timeout_seconds": 30},
        },
        "loadbalancer": {
            "kind": "haproxy", "runtime": str(plane.haproxy.socket_path), "backend": BACKEND,
            "main": list(plane.main), "bypass": list(plane.bypass), "state_file": str(plane.haproxy.state_file),
            "frontend_url": plane.apiserver_url, "server_scheme": "https", "probe_timeout_seconds": 2,
        },
        "drill_target": True,
    }
    tree: dict[str, Any] = {
        "database_url": database_url,
        "default_cluster": plane.cluster,
        "webhook_token": webhook_token,
        "prometheus_url": plane.prometheus.url,
        "alertmanager_url": plane.alertmanager.url,
        "kubeconfig": str(plane.kubeconfig),
        "oncall": {"rota": list(rota)},
        "approvers": {"users": list(rota), "allow_rota": True},
        "playbooks": {"auto_approve_drills": True},
        "alerting": {"default_cluster": plane.cluster},
        "clusters": {plane.cluster: cluster},
        "probes": {"clusters": {plane.cluster: {"apiservers": main + bypass, "ca_cert": ca_cert,
                                                "kubeconfig": str(plane.kubeconfig),
                                                "etcd": plane.etcd.endpoints}}},
    }
    if plane.customers is not None:  # a cluster customers use: probe it as they would
        tree["probes"]["clusters"][plane.cluster].update({"customer_probes": True, "bypass_apiservers": bypass})
        cluster["components"] = {
            name: {"controller": "local", "lease": f"kube-system/{name}",
                   "health_urls": [plane.customers.components[name].health_url]}
            for name in ("kube-scheduler", "kube-controller-manager")}
        if fast:  # a probe that took 5 s is a failure, and failures are confirmed fast (the 30 s goal)
            tree["probes"].update({"customer_interval_seconds": 2, "customer_timeout_seconds": 6})
    if plane.guard is not None:  # the admission webhook's TLS listener (bot.compose.sandbox.guard_setup)
        tree["guard"] = plane.guard.settings_tree()
    if fast:  # the sandbox's 1-second cadence end to end
        tree["watcher_interval_seconds"] = 1
        tree["outbox_interval_seconds"] = 0.1
        tree["probes"].update({"interval_seconds": 1, "timeout_seconds": 1, "confirm_failures": 2})
        tree["playbooks"].update({"worker_interval_seconds": 0.2})
        # a kube-apiserver whose etcd lost quorum answers /readyz only after its etcd check times out (2 s)
        tree["diagnosis"] = {"interval_seconds": 0.2, "check_timeout_seconds": 10}
        tree["evidence"] = {"watch_interval_seconds": 1, "interval_seconds": 1}  # changes seen within a second
    return tree


def build(tree: dict[str, Any]) -> Settings:
    return Settings.model_validate(tree)


def write(tree: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    path.chmod(0o600)
    return path
