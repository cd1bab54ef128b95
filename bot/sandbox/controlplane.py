"""A local control plane to rehearse on: etcd, apiservers behind HAProxy, Prometheus, Alertmanager.

Everything runs on loopback, on free ports, under one root directory that
the caller owns (``Sandbox`` removes it):

* a 3-member etcd cluster (Debian ``etcd``), metrics on their own ports;
* main and bypass apiserver stand-ins (kmock, ``bot.sandbox.apiserver``)
  serving ``/readyz``, ``/metrics`` with APF series and FlowSchemas;
* HAProxy in front of them (main servers active, bypass servers ``backup``),
  health-checking ``/readyz`` every second, with an admin socket and a
  server-state file: the load balancer failover-apiserver drives;
* Prometheus scraping etcd and the apiservers every second and evaluating
  the shipped fast rules (``deploy/prometheus/rules-fast.yml``), with the
  cluster name as an external label so alerts carry it;
* Alertmanager sending to the bot's webhook with the bearer token,
  ``group_wait: 0s``.

Start order follows the dependencies (etcd, apiservers, HAProxy, then the
monitoring); ``wait_scraped`` returns once Prometheus has seen every target
up, so that a fault injected afterwards is measured from a steady state.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError
from bot.sandbox.apiserver import ApiServerStandIn
from bot.sandbox.processes import (
    Alertmanager,
    EtcdCluster,
    HAProxy,
    HAProxyBackend,
    Prometheus,
    wait_until,
)

BACKEND = "kube_api_servers"
REPO_ROOT = Path(__file__).resolve().parents[2]
FAST_RULES = REPO_ROOT / "deploy" / "prometheus" / "rules-fast.yml"


@dataclass
class ControlPlaneOptions:
    cluster: str = "sandbox"
    etcd_members: int = 3
    main_apiservers: int = 1
    bypass_apiservers: int = 1
    rules_file: Path = FAST_RULES


class ControlPlane:
    """The parts of one sandbox cluster; ``start()`` brings them up, ``close()`` takes them down."""

    def __init__(self, root: Path, *, webhook_url: str, webhook_token: str,
                 options: ControlPlaneOptions | None = None) -> None:
        self.root = Path(root)
        self.options = options or ControlPlaneOptions()
        self.webhook_url = webhook_url
        self.webhook_token = webhook_token
        self.etcd: EtcdCluster | None = None
        self.main: dict[str, ApiServerStandIn] = {}
        self.bypass: dict[str, ApiServerStandIn] = {}
        self.haproxy: HAProxy | None = None
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None
        self.kubeconfig = self.root / "kubeconfig"
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
            self._start_etcd()
            self._start_apiservers()
            self._start_haproxy()
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
        for group, count, into in (("main", self.options.main_apiservers, self.main),
                                   ("bypass", self.options.bypass_apiservers, self.bypass)):
            for i in range(1, count + 1):
                server = ApiServerStandIn()
                self._stack.callback(server.stop)
                into[f"{group}-{i}"] = server.start()

    def _start_haproxy(self) -> None:
        backend = HAProxyBackend(
            BACKEND,
            servers={name: f"{s.host}:{s.port}" for name, s in self.main.items()},
            backups={name: f"{s.host}:{s.port}" for name, s in self.bypass.items()},
        )
        self.haproxy = HAProxy([backend], workdir=self.root / "haproxy")
        self._stack.callback(self.haproxy.stop)
        self.haproxy.start()
        self.haproxy.wait_checked()
        # every client (the bot, kubectl) reaches the apiservers through the load balancer
        first = next(iter(self.main.values()))
        first.write_kubeconfig(self.kubeconfig, context=self.cluster)
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = self.apiserver_url
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _start_monitoring(self, rules: Path) -> None:
        self.alertmanager = Alertmanager(self.webhook_url, self.webhook_token, workdir=self.root / "alertmanager",
                                         group_by=("cluster", "component", "alertname"))
        self._stack.callback(self.alertmanager.stop)
        self.alertmanager.start()
        assert self.etcd is not None
        apiservers = [{"targets": [f"{s.host}:{s.port}"], "labels": {"group": group, "server": name}}
                      for group, servers in (("main", self.main), ("bypass", self.bypass))
                      for name, s in servers.items()]
        extra: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "800ms", "evaluation_interval": "1s",
                       "external_labels": {"cluster": self.cluster}},
            "scrape_configs": [
                {"job_name": "etcd", "static_configs": [{"targets": self.etcd.metrics_targets}]},
                {"job_name": "apiserver", "static_configs": apiservers},
            ],
        }
        self.prometheus = Prometheus(rules=rules.read_text(), alertmanager=self.alertmanager.address,
                                     workdir=self.root / "prometheus", extra_config=extra)
        self._stack.callback(self.prometheus.stop)
        self.prometheus.start()

    def wait_scraped(self, timeout: float = 40.0) -> None:
        """Until Prometheus has scraped every target once and sees it up (its first scrape comes ~5 s late)."""
        assert self.prometheus is not None and self.etcd is not None
        expected = len(self.etcd.members) + len(self.main) + len(self.bypass)
        wait_until(lambda: len(self.prometheus.query("up == 1")) >= expected,  # type: ignore[union-attr]
                   timeout=timeout, interval=0.2, what=f"Prometheus to see all {expected} targets up")

    def close(self) -> None:
        """Stop everything started, last first; directories are the caller's to remove."""
        self._stack.close()

    # -- addresses ---------------------------------------------------------------
    @property
    def apiserver_url(self) -> str:
        """The load balancer's frontend: where clients reach the apiservers."""
        assert self.haproxy is not None
        return self.haproxy.frontend_url(BACKEND)

    def describe(self) -> list[str]:
        """One line per part, for the sandbox's banner."""
        assert self.etcd and self.haproxy and self.prometheus and self.alertmanager
        lines = [f"etcd members:      {', '.join(self.etcd.endpoints)}"]
        lines += [f"apiserver {name}: {s.url}" for name, s in {**self.main, **self.bypass}.items()]
        lines += [f"load balancer:     {self.apiserver_url} (HAProxy, admin socket {self.haproxy.socket_path})",
                  f"Prometheus:        {self.prometheus.url}",
                  f"Alertmanager:      {self.alertmanager.url} -> {self.webhook_url}",
                  f"kubeconfig:        {self.kubeconfig}"]
        return lines
