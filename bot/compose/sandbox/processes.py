"""Real components on loopback: the public surface of the sandbox's process starters.

Each class starts real binaries (etcd 3.6, Prometheus, Alertmanager, HAProxy) on free ephemeral
ports inside its own temporary directory, waits until they answer (polling with a deadline,
never a fixed sleep), and on ``close()`` stops every process it started and removes the
directory. They are context managers; the sandbox (``bot.compose.sandbox.controlplane``) composes them,
and the pytest fixtures in ``tests/support/fixtures_components`` wrap them. One module per
component: ``process_base`` (ports, waiting, processes), ``etcd_cluster``, ``monitoring``,
``haproxy``, ``loopback`` (tiny HTTP servers for tests); kube-apiservers are in
``kube_apiserver``.
"""

from bot.compose.sandbox.etcd_cluster import EtcdCluster, etcd_healthy
from bot.compose.sandbox.haproxy import HAPROXY_BIN, HAProxy, HAProxyBackend, http_get_via, served_by
from bot.compose.sandbox.loopback import StubApiserver, WebhookRecorder
from bot.compose.sandbox.monitoring import ALERTMANAGER_BIN, AMTOOL_BIN, PROMETHEUS_BIN, PROMTOOL_BIN, Alertmanager, Prometheus
from bot.compose.sandbox.process_base import (
    LOOPBACK,
    Component,
    ComponentError,
    Process,
    Workdir,
    free_port,
    http_ok,
    log_tail,
    wait_until,
)

__all__ = [
    "ALERTMANAGER_BIN", "AMTOOL_BIN", "HAPROXY_BIN", "LOOPBACK", "PROMETHEUS_BIN", "PROMTOOL_BIN",
    "Alertmanager", "Component", "ComponentError", "EtcdCluster", "HAProxy", "HAProxyBackend", "Process",
    "Prometheus", "StubApiserver", "WebhookRecorder", "Workdir", "etcd_healthy", "free_port", "http_get_via",
    "http_ok", "log_tail", "served_by", "wait_until",
]
