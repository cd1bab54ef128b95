"""Real components on loopback for integration tests.

The starters live in ``bot.compose.sandbox.processes`` (the sandbox and the drills run
the same code); this module re-exports them so tests keep one import path.
"""

from bot.compose.sandbox.processes import (  # noqa: F401 - re-exported
    ALERTMANAGER_BIN,
    AMTOOL_BIN,
    HAPROXY_BIN,
    LOOPBACK,
    PROMETHEUS_BIN,
    PROMTOOL_BIN,
    Alertmanager,
    ComponentError,
    EtcdCluster,
    HAProxy,
    HAProxyBackend,
    Prometheus,
    StubApiserver,
    WebhookRecorder,
    etcd_healthy,
    free_port,
    http_get_via,
    log_tail,
    served_by,
    wait_until,
)
