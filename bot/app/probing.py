"""Wiring the black-box prober: clients from configuration -> checks -> the prober worker.

Per cluster (``probes.clusters``; or, when that is empty, the apiservers,
kubeconfig and etcd members of ``clusters``): ``/readyz`` and ``/livez`` of
every apiserver, the write path through the kubeconfig's apiserver (when
``write_probe`` and a kubeconfig are set), ``/health`` and status of every
etcd member.  Clients are built once at start, so a bad kubeconfig fails the
start with one sentence instead of every tick.  Results are on ``/metrics``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from bot.app.bot import Bot
from bot.app.webhooks import wake_senders
from bot.config import ProbeCluster, Settings
from bot.incidents.probe_findings import ProbeRecorder, ProbeWorker, probe_rows
from integrations.etcd import EtcdClient
from integrations.kubernetes import KubernetesClient, connect
from integrations.probes import Check, apiserver_checks, etcd_checks, write_path_check


def probe_clusters(settings: Settings) -> dict[str, ProbeCluster]:
    """The clusters to probe: ``probes.clusters``, else derived from ``clusters`` if that section exists."""
    if settings.probes.clusters:
        return dict(settings.probes.clusters)
    derived: dict[str, ProbeCluster] = {}
    for name, cluster in (getattr(settings, "clusters", None) or {}).items():
        apiservers = list(getattr(cluster.apiservers, "main", [])) + list(getattr(cluster.apiservers, "bypass", []))
        members = list(getattr(cluster.etcd, "members", []))
        kubeconfig = getattr(cluster, "kubeconfig", None)
        if apiservers or members or kubeconfig:
            derived[name] = ProbeCluster(apiservers=apiservers, etcd=members, kubeconfig=kubeconfig,
                                         kube_context=getattr(cluster, "kube_context", None),
                                         write_probe=kubeconfig is not None)
    return derived


def build_checks(settings: Settings, closers: list[Any]) -> list[Check]:
    timeout = settings.probes.timeout_seconds
    checks: list[Check] = []
    for name, cluster in sorted(probe_clusters(settings).items()):
        for url in cluster.apiservers:
            client = KubernetesClient.from_host(url, verify_ssl=not cluster.insecure_skip_tls_verify,
                                                ca_cert=cluster.ca_cert, timeout=timeout)
            closers.append(client)
            checks += apiserver_checks(name, url, client)
        if cluster.write_probe and cluster.kubeconfig:
            writer = connect(cluster.kubeconfig, cluster.kube_context, timeout=timeout)
            closers.append(writer)
            checks.append(write_path_check(name, writer, settings.probes.namespace))
        if cluster.etcd:
            etcd = EtcdClient(cluster.etcd, timeout=timeout)
            closers.append(etcd)
            for endpoint in etcd.endpoints:
                checks += etcd_checks(name, etcd, endpoint)
    return checks


def probe_metrics(bot: Bot) -> list[Metric]:
    rows = probe_rows(bot.db)
    if not rows:
        return []
    names = ["cluster", "target", "component"]
    up = GaugeMetricFamily("incident_bot_probe_up",
                           "Last black-box probe of a target answered correctly (1) or not (0).", labels=names)
    latency = GaugeMetricFamily("incident_bot_probe_latency_seconds",
                                "Duration of the last black-box probe of a target.", labels=names)
    failures = GaugeMetricFamily("incident_bot_probe_consecutive_failures",
                                 "Failed probes in a row (2 confirm a failure).", labels=names)
    for row in rows:
        kind = row.target.split(" ", 1)[0]
        tags = [row.cluster, row.target, {"write-path": "apiserver"}.get(kind, kind)]
        up.add_metric(tags, 1 if row.ok else 0)
        latency.add_metric(tags, row.latency_ms / 1000)
        failures.add_metric(tags, row.consecutive_failures)
    return [up, latency, failures]


def register(bot: Bot) -> None:
    settings = bot.settings
    bot.metric_sources.append(probe_metrics)
    closers: list[Any] = []
    checks = build_checks(settings, closers)
    if not checks:
        return
    recorder = ProbeRecorder(bot.db, settings, bot.clock, bot.services.incidents)
    worker = ProbeWorker(recorder, lambda: checks, interval=settings.probes.interval_seconds,
                         timeout=settings.probes.timeout_seconds, on_change=lambda: wake_senders(bot))
    bot.workers.append(worker)
    bot.services.extras["prober"] = worker
    bot.on_stop.extend(c.close for c in closers)
