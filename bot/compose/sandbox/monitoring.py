"""Prometheus and Alertmanager from Debian's packages, configured for one sandbox or test:
1-second scrapes and evaluation, the shipped rules, Alertmanager posting to the bot's webhook."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

import httpx
import yaml

from bot.compose.sandbox.process_base import LOOPBACK, Component, ComponentError, Process, Workdir, free_port, http_ok, wait_until

PROMETHEUS_BIN = "/usr/bin/prometheus"
PROMTOOL_BIN = "/usr/bin/promtool"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
AMTOOL_BIN = "/usr/bin/amtool"


def _as_yaml(value: str | Mapping[str, Any]) -> str:
    return value if isinstance(value, str) else yaml.safe_dump(dict(value), sort_keys=False)


class Prometheus(Component):
    """Prometheus with 1 s scrape and evaluation intervals and ``--web.enable-lifecycle``.

    ``scrape_targets`` maps job name → ``host:port`` targets; ``rules`` is a
    rules file (YAML text or dict); ``alertmanager`` is the Alertmanager's
    ``host:port``.  The config is checked with ``promtool`` before start so a
    bad rule fails with promtool's sentence, not a timeout.

    Expect the first scrape results about 5-6 s after start, not 1 s:
    Prometheus's discovery manager hands targets to the scrape manager on a
    5 s tick (there is no flag for it in 2.42).  Start it early in a test.
    """

    def __init__(
        self,
        scrape_targets: Mapping[str, Sequence[str]] | None = None,
        *,
        rules: str | Mapping[str, Any] | None = None,
        alertmanager: str | None = None,
        workdir: str | Path | None = None,
        extra_config: Mapping[str, Any] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self._dir = Workdir(workdir, "ib-prom-")
        self.workdir = self._dir.path
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.scrape_targets = {k: list(v) for k, v in (scrape_targets or {}).items()}
        self.rules = rules
        self.alertmanager = alertmanager
        self.extra_config = dict(extra_config or {})
        self.start_timeout = start_timeout
        self.config_path = self.workdir / "prometheus.yml"
        self.rules_path = self.workdir / "rules.yml"
        self._proc: Process | None = None

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "800ms", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in self.scrape_targets.items()
            ],
        }
        if self.rules is not None:
            cfg["rule_files"] = [str(self.rules_path)]
        if self.alertmanager:
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]}
        cfg.update(self.extra_config)
        return cfg

    def write_config(self) -> None:
        if self.rules is not None:
            self.rules_path.write_text(_as_yaml(self.rules))
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def check_config(self) -> str:
        self.write_config()
        res = subprocess.run(
            [PROMTOOL_BIN, "check", "config", str(self.config_path)], capture_output=True, text=True, timeout=30
        )
        if res.returncode != 0:
            raise ComponentError(f"promtool check config failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def start(self) -> "Prometheus":
        self.check_config()
        proc = self._proc = Process(
            [
                PROMETHEUS_BIN,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--storage.tsdb.retention.time=1h",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                f"--web.external-url={self.url}/",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            self.workdir / "prometheus.log",
        )
        wait_until(lambda: proc.alive_and("prometheus", lambda: http_ok(self.url + "/-/ready")),
                   timeout=self.start_timeout, what=f"Prometheus at {self.url} to be ready")
        return self

    def reload(self) -> None:
        """Rewrite the config and ``POST /-/reload`` (lifecycle API)."""
        self.check_config()
        resp = httpx.post(self.url + "/-/reload", timeout=10, trust_env=False)
        if resp.status_code != 200:
            raise ComponentError(f"Prometheus reload failed: HTTP {resp.status_code} {resp.text}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the ``result`` list of the answer."""
        resp = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=5, trust_env=False)
        resp.raise_for_status()
        return resp.json()["data"]["result"]



class Alertmanager(Component):
    """Alertmanager 0.25 with one webhook receiver, fast grouping and no clustering.

    ``group_wait: 0s`` / ``group_interval: 1s`` make a firing alert reach the
    webhook within about a second; ``--cluster.listen-address=`` (empty)
    turns gossip off so nothing binds :9094.  With ``bearer_token`` the
    webhook carries ``Authorization: Bearer <token>`` (``http_config.
    authorization.credentials``), what the bot's webhook endpoint demands.
    The config is checked with ``amtool check-config`` before start.
    """

    def __init__(
        self,
        webhook_url: str,
        bearer_token: str | None = None,
        *,
        workdir: str | Path | None = None,
        send_resolved: bool = True,
        group_by: Sequence[str] = ("alertname", "job"),
        repeat_interval: str = "1h",
        start_timeout: float = 30.0,
        inhibit_rules: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self._dir = Workdir(workdir, "ib-am-")
        self.workdir = self._dir.path
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.address = f"{LOOPBACK}:{self.port}"
        self.webhook_url = webhook_url
        self.bearer_token = bearer_token
        self.send_resolved = send_resolved
        self.group_by = list(group_by)
        self.repeat_interval = repeat_interval
        self.start_timeout = start_timeout
        self.inhibit_rules = [dict(r) for r in inhibit_rules]
        self.config_path = self.workdir / "alertmanager.yml"
        self._proc: Process | None = None

    def config(self) -> dict[str, Any]:
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": self.send_resolved, "max_alerts": 0}
        if self.bearer_token:
            webhook["http_config"] = {"authorization": {"credentials": self.bearer_token}}
        config: dict[str, Any] = {
            "global": {"resolve_timeout": "5m"},
            "route": {
                "receiver": "incident-bot",
                "group_by": self.group_by,
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": "incident-bot", "webhook_configs": [webhook]}],
        }
        if self.inhibit_rules:
            config["inhibit_rules"] = self.inhibit_rules
        return config

    def check_config(self) -> str:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        res = subprocess.run([AMTOOL_BIN, "check-config", str(self.config_path)], capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise ComponentError(f"amtool check-config failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def start(self) -> "Alertmanager":
        self.check_config()
        proc = self._proc = Process(
            [
                ALERTMANAGER_BIN,
                f"--config.file={self.config_path}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address={self.address}",
                f"--web.external-url={self.url}/",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            self.workdir / "alertmanager.log",
        )
        wait_until(lambda: proc.alive_and("alertmanager", lambda: http_ok(self.url + "/-/ready")),
                   timeout=self.start_timeout, what=f"Alertmanager at {self.url} to be ready")
        return self

    def alerts(self) -> list[dict[str, Any]]:
        resp = httpx.get(self.url + "/api/v2/alerts", timeout=5, trust_env=False)
        resp.raise_for_status()
        return resp.json()
