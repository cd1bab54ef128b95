"""Settings: one YAML file, every value overridable from the environment.

Precedence: built-in defaults < YAML file (``--config`` or
``INCIDENT_BOT_CONFIG``) < environment.  Any leaf setting can be set with
``INCIDENT_BOT_<PATH>`` where the path is upper-cased and joined by ``__``
(``INCIDENT_BOT_BUDGETS__SEV1__NOTIFY=30``); the well-known names of
design.md (``SLACK_BOT_TOKEN``, ``PROMETHEUS_URL``, ...) are aliases.

A bad value stops the bot at start with one line naming the setting and what
was expected; secrets are ``SecretStr`` so they never appear in a repr or log.
Every variable may instead name a file holding the value (``NAME_FILE``, e.g.
``SLACK_BOT_TOKEN_FILE=/run/secrets/slack-bot-token``), as Kubernetes Secrets
and Docker secrets are mounted.  An ``INCIDENT_BOT_*`` variable that names no
setting is warned about and ignored: a stray variable in a pod's environment
must not keep the bot from starting in the middle of an incident.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.errors import ConfigError

log = logging.getLogger(__name__)

SEVERITIES = ("sev1", "sev2", "sev3")
STAGES = ("notify", "diagnose", "mitigate")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StageBudgets(_Section):
    """Seconds from T0 allowed for each stage of the 1-5-10 clock."""

    notify: float = Field(60, gt=0)
    diagnose: float = Field(300, gt=0)
    mitigate: float = Field(600, gt=0)


class Budgets(_Section):
    default: StageBudgets = StageBudgets()
    sev1: StageBudgets | None = None
    sev2: StageBudgets | None = None
    sev3: StageBudgets | None = None
    warn_ratio: float = Field(0.8, gt=0, lt=1)

    def for_severity(self, severity: str) -> StageBudgets:
        return getattr(self, severity, None) or self.default


def _iana_zone(value: str) -> str:
    from zoneinfo import ZoneInfo

    if value.strip().upper() != "UTC":
        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
    return value


class RotaOverride(_Section):
    """Someone covers a stretch of a rota (a swap, a holiday); times without an offset are the rota's zone."""

    user: str
    start: datetime
    end: datetime


class Team(_Section):
    """A team's rota, chosen for an incident by its cluster and component (see bot/slo/rota.py)."""

    members: list[str] = Field(min_length=1)
    clusters: list[str] = Field(default_factory=list)  # shell patterns (prod-eu-*); empty: any cluster
    components: list[str] = Field(default_factory=list)  # empty: any component
    timezone: str = "UTC"  # hand-overs happen at rotation_start's wall-clock time in this zone
    rotation_hours: float = Field(168, gt=0)
    rotation_start: datetime = datetime(2026, 1, 5, 9, 0)
    overrides: list[RotaOverride] = Field(default_factory=list)
    escalation: list[str] = Field(default_factory=list)  # paged after the members (a manager, a lead)

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _iana_zone(v)))


class OnCall(_Section):
    """The duty rota: who is paged first, and whom escalation pages next.

    ``rota`` (with its rotation and overrides) is the ``default`` team; ``teams``
    add rotas per team and cluster.  ``people`` maps a name to an e-mail address:
    Slack finds the person with ``users.lookupByEmail``, Opsgenie pages it.
    """

    rota: list[str] = Field(default_factory=list)
    rotation_hours: float = Field(168, gt=0)
    rotation_start: datetime = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    timezone: str = "UTC"
    overrides: list[RotaOverride] = Field(default_factory=list)
    teams: dict[str, Team] = Field(default_factory=dict)
    people: dict[str, str] = Field(default_factory=dict)  # name -> e-mail
    pager_webhook_url: str | None = None

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _iana_zone(v)))


class PagerDutySettings(_Section):
    """PagerDuty Events API v2 (pages) and webhooks v3 (acknowledgements)."""

    routing_key: SecretStr | None = None  # the integration key of an Events API v2 service integration
    events_url: str = "https://events.pagerduty.com/v2/enqueue"
    webhook_secrets: list[SecretStr] = Field(default_factory=list)  # v3 subscription secrets (two while rotating)
    timeout_seconds: float = Field(10, gt=0)


class OpsgenieSettings(_Section):
    """Opsgenie Alert API (pages) and its outgoing Webhook integration (acknowledgements)."""

    api_key: SecretStr | None = None  # an API integration's key (Authorization: GenieKey ...)
    api_url: str = "https://api.opsgenie.com"  # https://api.eu.opsgenie.com for the EU instance
    webhook_token: SecretStr | None = None  # sent by the Webhook integration as a custom header
    timeout_seconds: float = Field(10, gt=0)


class Paging(_Section):
    """Pagers beside chat, and what happens to a page nobody acknowledges."""

    pagerduty: PagerDutySettings = PagerDutySettings()
    opsgenie: OpsgenieSettings = OpsgenieSettings()
    repage_after_seconds: float = Field(180, gt=0)  # an unacknowledged page is repeated after this
    repeats: int = Field(1, ge=0)  # repeats to the same person before escalating along the rota
    max_escalations: int = Field(3, ge=0)


class Approvers(_Section):
    """Who may approve playbook runs, besides the incident commander."""

    users: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    allow_rota: bool = True
    approval_ttl_seconds: float = Field(900, gt=0)


class PlaybookSettings(_Section):
    """The playbook engine: worker cadence, crash detection, the cluster lease, drills."""

    worker_interval_seconds: float = Field(1, gt=0)
    stale_after_seconds: float = Field(30, gt=0)  # a running run whose owner is silent this long is orphaned
    lease_seconds: float = Field(120, gt=0)  # one mitigation per cluster; renewed by the owner's heartbeat
    request_ttl_seconds: float = Field(3600, gt=0)  # an unapproved request expires after this
    default_step_timeout_seconds: float = Field(60, gt=0)
    auto_approve_drills: bool = True  # runs on drill incidents need no human (recorded as auto-approved)


class SlackSettings(_Section):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    home: Literal["channel", "thread"] = "channel"
    incidents_channel: str | None = None
    invite: list[str] = Field(default_factory=list)
    card_min_interval_seconds: float = Field(3, ge=0)
    users: dict[str, str] = Field(default_factory=dict)  # bot user name -> Slack user id (U…), for rota/approvers
    request_timeout_seconds: float = Field(10, gt=0)  # one Web API call; a hang becomes a retry, not a stuck worker
    press_window_seconds: float = Field(10, ge=0)  # a second press of the same button within this is a double click


class AlertRule(_Section):
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


class Alerting(_Section):
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


class FleetGrouping(_Section):
    """One fault across clusters is one incident: alerts agreeing on ``match_labels`` within the window join."""

    enabled: bool = True
    match_labels: list[str] = Field(default_factory=lambda: ["alertname", "region"], min_length=1)
    window_seconds: float = Field(300, gt=0)


Alerting.model_rebuild()


class ProbeCluster(_Section):
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


class Probes(_Section):
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


class ExportSettings(_Section):
    """Post-mortem export: the default reader zone, links, extra secret patterns to redact."""

    default_timezone: str = "UTC"
    public_url: str | None = None  # the bot's HTTP base URL as people reach it (for export links in chat)
    redact_patterns: list[str] = Field(default_factory=list)  # regular expressions, redacted in every format

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        if value.strip().upper() != "UTC":
            try:
                ZoneInfo(value)
            except Exception:
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        import re

        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value


class ApiserverGroups(_Section):
    """The apiserver URLs of a cluster: the main group and the bypass (side-path) group."""

    main: list[str] = Field(default_factory=list)
    bypass: list[str] = Field(default_factory=list)
    ca_cert: str | None = None  # the CA that signed their serving certificates (default: the system's)


class LoadBalancerSettings(_Section):
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


class EtcdMemberSettings(_Section):
    """One etcd member as the restore needs it: name, URLs, data dir (and host for command templates)."""

    name: str
    client_url: str
    peer_url: str
    data_dir: str
    metrics_url: str | None = None
    host: str | None = None


class EtcdRestoreSettings(_Section):
    """How restore-etcd stops, restores and starts members, and cuts the apiservers off meanwhile."""

    members: list[EtcdMemberSettings] = Field(default_factory=list)
    controller: Literal["local", "command"] = "local"  # local: child processes (sandbox, tests)
    start_command: str | None = None  # command templates: {name} {host} {data_dir} {client_url} ...
    stop_command: str | None = None
    is_running_command: str | None = None
    command_timeout_seconds: float = Field(60, gt=0)
    etcd_binary: str | None = None  # default: the etcd setup builds (bot.binaries), else $PATH
    data_root: str | None = None  # where restored data dirs go; default: beside each member's data dir
    apiservers: Literal["lb", "command", "none"] = "lb"  # how to cut the apiservers off during the restore
    apiservers_stop_command: str | None = None
    apiservers_start_command: str | None = None
    health_timeout_seconds: float = Field(60, gt=0)


class EtcdSnapshotSettings(_Section):
    """The backup catalogue: where snapshots go, how often the worker takes one, how many to keep."""

    dir: str | None = None
    interval_seconds: float = Field(0, ge=0)  # 0: no scheduled snapshots
    keep: int = Field(24, ge=1)
    timeout_seconds: float = Field(300, gt=0)


class EtcdEndpoints(_Section):
    members: list[str] = Field(default_factory=list)  # client URLs, one per member
    etcdctl: str | None = None  # default: on PATH
    etcdutl: str | None = None  # default: next to etcdctl or on PATH (3.5+)
    snapshots: EtcdSnapshotSettings = EtcdSnapshotSettings()
    restore: EtcdRestoreSettings = EtcdRestoreSettings()


class ComponentSettings(_Section):
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


class ClusterEndpoints(_Section):
    """Where a cluster's parts answer: used by diagnosis checks and playbooks (``clusters.NAME``)."""

    prometheus_url: str | None = None  # default: the top-level PROMETHEUS_URL
    kubeconfig: str | None = None  # default: the top-level KUBECONFIG
    kube_context: str | None = None
    apiservers: ApiserverGroups = ApiserverGroups()
    etcd: EtcdEndpoints = EtcdEndpoints()
    loadbalancer: LoadBalancerSettings = LoadBalancerSettings()  # read by failover/failback and restore-etcd
    components: dict[str, ComponentSettings] = Field(default_factory=dict)  # restartable by playbooks
    drill_target: bool = False  # fault drills may break this cluster (never set it on a production cluster)


class Diagnosis(_Section):
    """Diagnosis procedures (SOPs): where they are and how they run."""

    sop_dirs: list[str] = Field(default_factory=list)  # empty: the procedures shipped in ``sop/``
    auto: bool = True  # diagnose every notified incident once, automatically
    check_timeout_seconds: float = Field(10, gt=0)
    interval_seconds: float = Field(2, gt=0)


class Drills(_Section):
    """Scheduled fault drills in ``serve``: every ``interval_seconds`` the next scenario runs on ``cluster``.

    ``cluster`` must be in ``clusters`` with ``drill_target: true``, or be
    ``sandbox``: a local control plane the drill starts and throws away.
    """

    enabled: bool = False
    interval_seconds: float = Field(86400, gt=0)
    scenarios: list[str] = Field(default_factory=lambda: ["etcd-member-down", "etcd-quorum-loss",
                                                         "apiserver-down", "client-flood"])
    cluster: str = "sandbox"
    out_dir: str = "drills"  # scorecards and post-mortems, one directory per drill


class TicketSettings(_Section):
    """Where action items become issues: GitHub (``repo``) or Jira (``project``); none by default."""

    kind: Literal["none", "github", "jira"] = "none"
    url: str | None = None  # GitHub: https://api.github.com (default) or https://HOST/api/v3; Jira: the site URL
    repo: str | None = None  # GitHub OWNER/NAME
    project: str | None = None  # Jira project key
    issue_type: str = "Task"  # Jira
    email: str | None = None  # Jira Cloud: basic auth as this account with ``token``; without it, a bearer PAT
    token: SecretStr | None = None
    labels: list[str] = Field(default_factory=lambda: ["incident-action"])
    sync_interval_seconds: float = Field(300, gt=0)  # create new issues, and look for closed ones, this often
    remind_overdue: bool = True  # a chat reminder per overdue open action item, once a day

    @field_validator("repo")
    @classmethod
    def _owner_name(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or value.startswith("/") or value.endswith("/")):
            raise ValueError(f"expected OWNER/NAME, e.g. acme/platform, not {value!r}")
        return value


class UiSettings(_Section):
    """The read-only web board under /ui/ (behind ``api_token``, or a reverse proxy's identity header)."""

    identity_header: str | None = None  # e.g. X-Forwarded-User, set by an authenticating proxy in front
    refresh_seconds: float = Field(0.5, gt=0, le=60)  # how often the board asks for changes (a 304 when none)


class GuardRule(_Section):
    """One entry of the admission guard's risk list: writes that an open sev1/sev2 incident freezes."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    operations: list[Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]] = Field(min_length=1)
    resources: list[str] = Field(min_length=1)  # "resource" (core group) or "group/resource"
    namespaces: list[str] = Field(default_factory=list)  # empty: any namespace (and cluster-scoped objects)
    critical: bool = False  # an exception needs two approvers


class GuardBreakerSettings(_Section):
    """The mass-deletion circuit breaker: more deletes than this within the window are denied."""

    resources: list[str] = Field(default_factory=lambda: ["pods"])
    per_client: int = Field(100, ge=1)
    cluster_wide: int = Field(300, ge=1)
    window_seconds: float = Field(60, gt=0)


def _default_guard_rules() -> list["GuardRule"]:
    return [GuardRule(name=n, operations=o, resources=r, namespaces=ns, critical=c) for n, o, r, ns, c in (
        ("delete-namespaces", ["DELETE"], ["namespaces"], [], True),
        ("delete-crds", ["DELETE"], ["apiextensions.k8s.io/customresourcedefinitions"], [], True),
        ("delete-nodes", ["DELETE"], ["nodes"], [], False),
        ("control-plane-workloads", ["UPDATE", "DELETE"],
         ["apps/deployments", "apps/daemonsets", "apps/statefulsets"], ["kube-system"], False),
        ("admission-webhooks", ["CREATE", "UPDATE", "DELETE"],
         ["admissionregistration.k8s.io/validatingwebhookconfigurations",
          "admissionregistration.k8s.io/mutatingwebhookconfigurations"], [], True),
        ("apf", ["CREATE", "UPDATE", "DELETE"],
         ["flowcontrol.apiserver.k8s.io/flowschemas", "flowcontrol.apiserver.k8s.io/prioritylevelconfigurations"],
         [], False),
    )]


class GuardSettings(_Section):
    """The validating admission webhook (``bot.guard``): change freeze during incidents and the breaker."""

    enabled: bool = False
    mode: Literal["enforce", "audit"] = "enforce"  # audit: would-deny decisions are counted and logged only
    freeze_severities: list[str] = Field(default_factory=lambda: ["sev1", "sev2"])
    rules: list[GuardRule] = Field(default_factory=_default_guard_rules)
    breaker: GuardBreakerSettings = GuardBreakerSettings()
    exempt_users: list[str] = Field(default_factory=lambda: ["incident-bot",
                                                             "system:serviceaccount:incident-bot:incident-bot"])
    refresh_seconds: float = Field(1.0, gt=0)  # how often the incident/freeze state is read from the database
    stale_after_seconds: float = Field(10.0, gt=0)  # older state than this: answer allow (and count it)
    max_exception_minutes: int = Field(240, ge=1)
    host: str = "127.0.0.1"  # the TLS listener the kube-apiservers call
    port: int = Field(8443, ge=1, le=65535)
    tls_cert_path: str | None = None
    tls_key_path: str | None = None
    client_ca_path: str | None = None  # set: the apiservers must present a client certificate it signed
    # (paths, not *_file: INCIDENT_BOT_X_FILE means "the value of X is in this file" everywhere else)


class Evidence(_Section):
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


class Settings(_Section):
    database_url: str = "sqlite:///incident-bot.db"
    host: str = "127.0.0.1"  # where ``serve`` listens (``--host`` wins)
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    log_format: Literal["text", "json"] = "text"  # json: one object a line, for log collectors
    api_token: SecretStr | None = None  # bearer token for /api/*; required to serve on a non-loopback address
    auto_migrate: bool = True
    budgets: Budgets = Budgets()
    oncall: OnCall = OnCall()
    paging: Paging = Paging()
    approvers: Approvers = Approvers()
    playbooks: PlaybookSettings = PlaybookSettings()
    slack: SlackSettings = SlackSettings()
    alerting: Alerting = Alerting()
    clusters: dict[str, ClusterEndpoints] = Field(default_factory=dict)
    diagnosis: Diagnosis = Diagnosis()
    evidence: Evidence = Evidence()
    probes: Probes = Probes()
    drills: Drills = Drills()
    kubeconfig: str | None = None
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    webhook_token: SecretStr | None = None
    watcher_interval_seconds: float = Field(5, gt=0)
    outbox_interval_seconds: float = Field(0.5, gt=0)
    default_cluster: str = "default"
    export: ExportSettings = ExportSettings()
    tickets: TicketSettings = TicketSettings()
    ui: UiSettings = UiSettings()
    guard: GuardSettings = GuardSettings()
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) and value.lower() not in {"text", "json"} else value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value


# Names from design.md that map onto setting paths.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "INCIDENT_BOT_DATABASE_URL": ("database_url",),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "SLACK_API_URL": ("slack", "api_url"),
    "KUBECONFIG": ("kubeconfig",),
    "PROMETHEUS_URL": ("prometheus_url",),
    "ALERTMANAGER_URL": ("alertmanager_url",),
    "INCIDENT_BOT_WEBHOOK_TOKEN": ("webhook_token",),
    "INCIDENT_BOT_API_TOKEN": ("api_token",),
}
ENV_PREFIX = "INCIDENT_BOT_"
_NOT_SETTINGS = {"INCIDENT_BOT_CONFIG"}
FILE_SUFFIX = "_FILE"


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _env_value(raw: str) -> Any:
    """Environment values are read as YAML scalars/flow collections ("30", "[a, b]")."""
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return raw


def _read_files(environ: dict[str, str]) -> dict[str, str]:
    """``NAME_FILE=/path`` becomes ``NAME=<the file's content>`` (a trailing newline dropped).

    Only for names that are settings (aliases or ``INCIDENT_BOT_*``); setting
    both ``NAME`` and ``NAME_FILE`` is ambiguous and refused.
    """
    out = dict(environ)
    for name, path in environ.items():
        base = name[: -len(FILE_SUFFIX)]
        if not name.endswith(FILE_SUFFIX) or not (base in ENV_ALIASES or base.startswith(ENV_PREFIX)):
            continue
        if base in environ:
            raise ConfigError(f"{name}: {base} is set too; set one of them")
        try:
            out[base] = Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
        del out[name]
    return out


def _known_path(path: tuple[str, ...]) -> bool:
    """Does ``path`` name a setting (or lie inside a free-form mapping such as ``clusters``)?"""
    import types
    import typing

    node: Any = Settings
    for part in path:
        if node is Any:
            return True
        while typing.get_origin(node) in (typing.Union, types.UnionType):
            node = next((a for a in typing.get_args(node) if a is not type(None)), Any)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            if field is None:
                return False
            node = field.annotation
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        else:
            return False
    return True


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if name in ENV_ALIASES:
            path = ENV_ALIASES[name]
            value: Any = raw if path[-1] in {"database_url", "api_url"} or "token" in path[-1] or "secret" in path[-1] else _env_value(raw)
            _set_path(tree, path, value)
        elif name.startswith(ENV_PREFIX) and name not in _NOT_SETTINGS:
            path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__") if part)
            if path and not _known_path(path):
                log.warning("environment variable %s names no setting (%s); ignored", name, ".".join(path))
            elif path:
                _set_path(tree, path, _env_value(raw))
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown setting"
    return f"{path}: {msg}"


def load_settings(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the YAML file (if any) and the environment into validated ``Settings``."""
    environ = _read_files(dict(os.environ if environ is None else environ))
    path = path or environ.get("INCIDENT_BOT_CONFIG")
    data: dict[str, Any] = {}
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {file}: not found")
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {file}: expected a mapping of settings at the top level")
        data = loaded
    data = _merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"bad setting {_describe(first)}{more}") from None


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
