"""A local control plane to rehearse on: etcd 3.6, real kube-apiservers behind HAProxy, monitoring.

Everything runs on loopback, on free ports, under one root directory that the caller owns
(``Sandbox`` removes it):

* a 3-member etcd cluster (etcd 3.6 built from its Go modules), metrics on their own ports;
* two main kube-apiservers and one bypass kube-apiserver (built from ``k8s.io/kubernetes``) on
  that etcd, with the sandbox's certificates and static-token users (``bot.compose.sandbox.pki``), RBAC,
  and API Priority and Fairness limits small enough that a flood on 2 cores is really rejected;
* HAProxy in front of them in TCP mode (main servers active, bypass servers ``backup``),
  health-checking ``/readyz`` over TLS every second, with an admin socket and a server-state
  file: the load balancer failover-apiserver drives;
* Prometheus scraping etcd and the apiservers' real ``/metrics`` every second and evaluating the
  shipped fast rules (``deploy/prometheus/rules-fast.yml``), the cluster name as an external label;
* Alertmanager sending to the bot's webhook with the bearer token, ``group_wait: 0s``.

The bot reaches the apiservers through the load balancer with its own least-privilege user.
``wait_scraped`` returns once Prometheus has seen every target up, so that a fault injected
afterwards is measured from a steady state.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.errors import ConfigError
from bot.compose.sandbox import cluster_setup
from bot.compose.sandbox.customers import CUSTOMER_USERS, CustomerCluster, CustomerOptions
from bot.compose.sandbox.guard_setup import GUARD_USERS, GuardSetup
from bot.compose.sandbox.kube_apiserver import ApiserverLimits, KubeApiserver, write_kubeconfig
from bot.compose.sandbox.pki import ADMIN, BOT, ClusterPKI, StaticUser, make_pki, sandbox_users
from bot.compose.sandbox.processes import Alertmanager, EtcdCluster, HAProxy, HAProxyBackend, Prometheus, wait_until
from bot.compose.sandbox.versions import component_versions
from integrations.clients.kubernetes import KubernetesClient, connect

BACKEND = "kube_api_servers"
# deploy/prometheus/rules-fast.yml, shipped in the package (a symlink in the source tree, a copy in a wheel)
FAST_RULES = Path(__file__).with_name("data") / "rules-fast.yml"

# the drills' clients: one that floods, one that behaves, and Prometheus (group system:monitoring)
FLOOD_USER = StaticUser("system:serviceaccount:batch:hammer",
                        ("system:serviceaccounts", "system:serviceaccounts:batch", "system:authenticated"))
BYSTANDER_USER = StaticUser("system:serviceaccount:apps:reporter",
                            ("system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated"))
PROMETHEUS_USER = StaticUser("prometheus", ("system:monitoring", "system:authenticated"))
DRILL_USERS = (FLOOD_USER, BYSTANDER_USER, PROMETHEUS_USER)
# what the APF metrics Prometheus keeps from the apiservers (the rest of their /metrics is dropped)
APISERVER_SERIES = "up|apiserver_request_total|apiserver_request_terminations_total|apiserver_flowcontrol_.*|" \
                   "apiserver_current_inflight_requests|apiserver_storage_.*|" \
                   "process_.*|apiserver_request_duration_seconds_(count|sum)"
# the biggest families of an apiserver's /metrics, which Prometheus drops anyway: the apiservers do not
# expose them (--disabled-metrics), 0.8 of its 1.4 MB. During the client flood, on 2 shared cores, the whole
# /metrics took 1-3 s, every 1-s scrape (900 ms timeout) failed, and the flood's APF metrics were not seen
# until the throttle. Nothing the rules, the SOPs or the bot read is among them.
# deploy/alertmanager/alertmanager.yml's inhibition: no flood alert while etcd has lost quorum (a symptom there)
INHIBIT_RULES = ({"source_matchers": ['alertname=~"EtcdInsufficientMembers|EtcdNoLeader"'],
                  "target_matchers": ['playbook="throttle-client"'], "equal": ["cluster"]},)
UNSCRAPED_APISERVER_METRICS = (
    "etcd_request_duration_seconds", "apiserver_request_sli_duration_seconds",
    "apiserver_watch_cache_read_wait_seconds", "apiserver_watch_list_duration_seconds",
    "apiserver_request_body_size_bytes", "apiserver_watch_events_sizes", "apiserver_response_sizes",
)


@dataclass
class ControlPlaneOptions:
    cluster: str = "sandbox"
    etcd_members: int = 3
    main_apiservers: int = 2
    bypass_apiservers: int = 1
    rules_file: Path = FAST_RULES
    limits: ApiserverLimits = field(default_factory=ApiserverLimits)
    # a cluster customers can use: scheduler, controller-manager, kwok nodes (bot.compose.sandbox.customers)
    customers: bool = False
    # the bot's validating admission webhook, registered with the apiservers (bot.compose.sandbox.guard_setup)
    admission_guard: bool = False
    customer: CustomerOptions = field(default_factory=CustomerOptions)


class ControlPlane:
    """The parts of one sandbox cluster; ``start()`` brings them up, ``close()`` takes them down."""

    def __init__(self, root: Path, *, webhook_url: str, webhook_token: str,
                 options: ControlPlaneOptions | None = None) -> None:
        self.root = Path(root)
        self.options = options or ControlPlaneOptions()
        self.webhook_url = webhook_url
        self.webhook_token = webhook_token
        self.pki: ClusterPKI | None = None
        self.etcd: EtcdCluster | None = None
        self.main: dict[str, KubeApiserver] = {}
        self.bypass: dict[str, KubeApiserver] = {}
        self.haproxy: HAProxy | None = None
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None
        self.customers: CustomerCluster | None = None
        self.guard: GuardSetup | None = None
        self.kubeconfig = self.root / "kubeconfig"  # the bot's user, through the load balancer
        self.admin_kubeconfig = self.root / "admin.kubeconfig"
        self._stack = contextlib.ExitStack()

    @property
    def cluster(self) -> str:
        return self.options.cluster

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "ControlPlane":
        rules = self.options.rules_file
        if not Path(rules).is_file():
            raise ConfigError(f"the sandbox's Prometheus rules file {rules} does not exist "
                              f"(expected the shipped deploy/prometheus/rules-fast.yml).")
        try:
            users = DRILL_USERS + (CUSTOMER_USERS if self.options.customers else ()) \
                + (GUARD_USERS if self.options.admission_guard else ())
            self.pki = make_pki(self.root / "pki", sandbox_users(users))
            if self.options.admission_guard:
                self.guard = GuardSetup(self.root / "guard", self.pki, self.cluster)
            self._start_etcd()
            self._start_apiservers()
            self._start_haproxy()
            self._set_up_cluster()
            if self.options.customers:
                self.customers = CustomerCluster(self, self.options.customer)
                self._stack.callback(self.customers.close)
                self.customers.start()
            self._start_monitoring(Path(rules))
        except BaseException:
            self.close()
            raise
        return self

    def _start_etcd(self) -> None:
        self.etcd = EtcdCluster(self.options.etcd_members, workdir=self.root / "etcd",
                                token=f"{self.cluster}-etcd")
        self._stack.callback(self.etcd.stop_all)
        self.etcd.start()

    def _start_apiservers(self) -> None:
        assert self.etcd is not None and self.pki is not None
        for group, count, into in (("main", self.options.main_apiservers, self.main),
                                   ("bypass", self.options.bypass_apiservers, self.bypass)):
            for i in range(1, count + 1):
                name = f"{group}-{i}"
                server = KubeApiserver(name, etcd_servers=self.etcd.endpoints, pki=self.pki,
                                       workdir=self.root / "apiservers" / name, limits=self.options.limits,
                                       service_account_admission=self.options.customers,
                                       extra_args=(f"--disabled-metrics={','.join(UNSCRAPED_APISERVER_METRICS)}",
                                                   *(self.guard.apiserver_args() if self.guard else ())))
                self._stack.callback(server.stop)
                into[name] = server
        with ThreadPoolExecutor(max_workers=3) as pool:  # they start in parallel: ~3x faster
            list(pool.map(lambda s: s.start(), self.apiservers.values()))

    def _start_haproxy(self) -> None:
        assert self.pki is not None
        backend = HAProxyBackend(
            BACKEND,
            servers={name: s.address for name, s in self.main.items()},
            backups={name: s.address for name, s in self.bypass.items()},
            check_ssl=True,
        )
        self.haproxy = HAProxy([backend], workdir=self.root / "haproxy")
        self._stack.callback(self.haproxy.stop)
        self.haproxy.start()
        self.haproxy.wait_checked()
        write_kubeconfig(self.kubeconfig, server=self.apiserver_url, pki=self.pki, user=BOT, context=self.cluster)
        write_kubeconfig(self.admin_kubeconfig, server=self.apiserver_url, pki=self.pki, user=ADMIN,
                         context=self.cluster)

    def admin(self) -> KubernetesClient:
        """A client with the admin's token, through the load balancer (close it after use)."""
        return connect(str(self.admin_kubeconfig), timeout=10.0)

    def _set_up_cluster(self) -> None:
        admin = self.admin()
        try:
            cluster_setup.apply_all(admin, [
                *cluster_setup.bot_rbac_manifests(), cluster_setup.DRILL_READER_ROLE,
                cluster_setup.reader_binding("drill-clients-view", [g for u in DRILL_USERS for g in u.groups
                                                                    if g.startswith("system:serviceaccounts:")]),
                cluster_setup.namespace("batch"), cluster_setup.namespace("apps"),
                cluster_setup.configmap("apps", "reporter", {"status": "ok"}),
                *([self.guard.webhook_configuration()] if self.guard else []),  # fails open until the bot listens
            ])
            cluster_setup.tighten_workload_low(admin)
        finally:
            admin.close()

    def _start_monitoring(self, rules: Path) -> None:
        assert self.etcd is not None and self.pki is not None
        self.alertmanager = Alertmanager(self.webhook_url, self.webhook_token, workdir=self.root / "alertmanager",
                                         group_by=("cluster", "component", "alertname"), inhibit_rules=INHIBIT_RULES)
        self._stack.callback(self.alertmanager.stop)
        self.alertmanager.start()
        token_file = self.root / "pki" / "prometheus.token"
        token_file.write_text(self.pki.token(PROMETHEUS_USER.name))
        token_file.chmod(0o600)
        apiservers = [{"targets": [s.address], "labels": {"group": group, "server": name}}
                      for group, servers in (("main", self.main), ("bypass", self.bypass))
                      for name, s in servers.items()]
        extra: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s",
                       "external_labels": {"cluster": self.cluster}},
            "scrape_configs": [
                {"job_name": "etcd", "static_configs": [{"targets": self.etcd.metrics_targets}]},
                {"job_name": "apiserver", "scheme": "https",
                 "tls_config": {"ca_file": str(self.pki.ca_cert)},
                 "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                 "static_configs": apiservers,
                 "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": APISERVER_SERIES,
                                             "action": "keep"}]},
            ],
        }
        self.prometheus = Prometheus(rules=rules.read_text(), alertmanager=self.alertmanager.address,
                                     workdir=self.root / "prometheus", extra_config=extra)
        self._stack.callback(self.prometheus.stop)
        self.prometheus.start()

    def wait_scraped(self, timeout: float = 60.0) -> None:
        """Until Prometheus has scraped every target once and sees it up (its first scrape comes ~5 s late)."""
        prometheus = self.prometheus
        assert prometheus is not None and self.etcd is not None
        expected = len(self.etcd.members) + len(self.main) + len(self.bypass)
        wait_until(lambda: len(prometheus.query("up == 1")) >= expected,
                   timeout=timeout, interval=0.2, what=f"Prometheus to see all {expected} targets up")

    def close(self) -> None:
        """Stop everything started, last first; directories are the caller's to remove."""
        self._stack.close()

    # -- addresses ---------------------------------------------------------------
    @property
    def apiservers(self) -> dict[str, KubeApiserver]:
        return {**self.main, **self.bypass}

    @property
    def apiserver_url(self) -> str:
        """The load balancer's frontend: where clients reach the apiservers (TLS passes through)."""
        assert self.haproxy is not None
        return self.haproxy.frontend_url(BACKEND).replace("http://", "https://", 1)

    def components(self) -> list[dict[str, str]]:
        """Each real component the sandbox runs, with its version (for the scorecard)."""
        return component_versions(self)

    def describe(self) -> list[str]:
        """One line per part, for the sandbox's banner."""
        assert self.etcd and self.haproxy and self.prometheus and self.alertmanager
        lines = [f"etcd members:      {', '.join(self.etcd.endpoints)}"]
        lines += [f"kube-apiserver {name}: {s.url}" for name, s in self.apiservers.items()]
        lines += [f"load balancer:     {self.apiserver_url} (HAProxy, admin socket {self.haproxy.socket_path})",
                  f"Prometheus:        {self.prometheus.url}",
                  f"Alertmanager:      {self.alertmanager.url} -> {self.webhook_url}",
                  f"kubeconfig:        {self.kubeconfig} (the bot), {self.admin_kubeconfig} (admin)"]
        return lines
