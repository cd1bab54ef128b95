"""How the bot notices and explains a fault: alert grouping, black-box probes, evidence, SOPs."""

from __future__ import annotations


from pydantic import Field, field_validator

from bot.core.config.base import SEVERITIES, Section


class AlertRule(Section):
    """Maps alert labels to incident fields; the first matching rule wins."""

    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    severity: str | None = None
    component: str | None = None
    cluster: str | None = None
    page: list[str] = Field(default_factory=list)

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in SEVERITIES:
            raise ValueError(f"expected one of {', '.join(SEVERITIES)}, not {value!r}")
        return value.lower() if value else value

    @field_validator("match_re")
    @classmethod
    def _regular_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{label}: {pattern!r} is not a regular expression: {exc}") from None
        return value


class Alerting(Section):
    group_window_seconds: float = Field(600, gt=0)
    cluster_label: str = "cluster"
    component_label: str = "component"
    default_cluster: str = "default"
    default_severity: str = "sev2"
    rules: list[AlertRule] = Field(default_factory=list)
    # an alert of component K also joins an open incident of one of these components (a cascade)
    depends_on: dict[str, list[str]] = Field(default_factory=lambda: {
        "apiserver": ["etcd"], "scheduler": ["apiserver", "etcd"],
        "controller-manager": ["apiserver", "etcd"], "kubelet": ["apiserver", "etcd"],
    })
    fleet: "FleetGrouping" = Field(default_factory=lambda: FleetGrouping())


class FleetGrouping(Section):
    """One fault across clusters is one incident: alerts agreeing on ``match_labels`` within the window join."""

    enabled: bool = True
    match_labels: list[str] = Field(default_factory=lambda: ["alertname", "region"], min_length=1)
    window_seconds: float = Field(300, gt=0)


Alerting.model_rebuild()


class ProbeCluster(Section):
    """What the black-box prober exercises in one cluster."""

    apiservers: list[str] = Field(default_factory=list)
    ca_cert: str | None = None
    insecure_skip_tls_verify: bool = False
    kubeconfig: str | None = None
    kube_context: str | None = None
    write_probe: bool = True
    etcd: list[str] = Field(default_factory=list)
    # customer probes (pod, StatefulSet) through the kubeconfig; the write probe also through each of these
    customer_probes: bool = False
    bypass_apiservers: list[str] = Field(default_factory=list)


class Probes(Section):
    interval_seconds: float = Field(10, gt=0)
    timeout_seconds: float = Field(3, gt=0)
    confirm_failures: int = Field(2, ge=1)
    namespace: str = "incident-bot-probe"
    clusters: dict[str, ProbeCluster] = Field(default_factory=dict)
    customer_interval_seconds: float = Field(10, gt=0)  # pod + StatefulSet probes (slower, costlier)
    customer_timeout_seconds: float = Field(20, gt=0)  # a pod not running by then is a failed probe
    statefulset_replicas: int = Field(2, ge=1)
    # a probe that answers correctly but slower than this (seconds, by the target's first word) counts
    # against the latency SLOs; kinds not named have no latency objective
    slow_seconds: dict[str, float] = Field(default_factory=lambda: {
        "pod": 5.0, "statefulset": 30.0, "write-path": 1.0, "apiserver": 1.0})


class Diagnosis(Section):
    """Diagnosis procedures (SOPs): where they are and how they run."""

    sop_dirs: list[str] = Field(default_factory=list)  # empty: the procedures shipped in ``sop/``
    auto: bool = True  # diagnose every notified incident once, automatically
    check_timeout_seconds: float = Field(10, gt=0)
    interval_seconds: float = Field(2, gt=0)


class Evidence(Section):
    """What the bot freezes at an incident's T0 and the changes it watches for (``evidence``)."""

    enabled: bool = True
    before_seconds: float = Field(900, ge=0)  # Prometheus window: [T0 - before, T0 + after], fetched once complete
    after_seconds: float = Field(300, ge=0)
    step_seconds: float = Field(15, gt=0)
    max_bytes: int = Field(262144, ge=1024)  # size cap of one incident's stored evidence; truncation is recorded
    timeout_seconds: float = Field(5, gt=0)  # one read of one source; a source down is a recorded gap
    interval_seconds: float = Field(2, gt=0)
    changes_window_seconds: float = Field(1800, gt=0)  # "what changed in the 30 minutes before T0"
    watch_interval_seconds: float = Field(10, gt=0)  # how often the change watcher re-lists the watched kinds
    watch: bool = True  # keep the change watch on every cluster with a kubeconfig
    audit_log: str | None = None  # a kube-apiserver audit log (JSON lines) the bot may read, when configured
    events_limit: int = Field(50, ge=1)  # recent control-plane Events kept
