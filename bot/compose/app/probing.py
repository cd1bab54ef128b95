"""Wiring the black-box prober: clients from configuration -> checks -> the prober worker.

Per cluster (``probes.clusters``; or, when that is empty, the apiservers,
kubeconfig and etcd members of ``clusters``): ``/readyz`` and ``/livez`` of
every apiserver, the write path through the kubeconfig's apiserver (when
``write_probe`` and a kubeconfig are set), ``/health`` and status of every
etcd member; with ``customer_probes`` also a pod, a StatefulSet and node
readiness (``integrations.clients.probes.customer``) in a worker of their own, and
with ``bypass_apiservers`` the write path through each bypass apiserver.
Clients are built once at start, so a bad kubeconfig fails the
start with one sentence instead of every tick.  Results are on ``/metrics``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.compose.app.bot import Bot
from bot.compose.app.webhooks import wake_senders
from bot.chat import handlers_slo
from bot.core.config import Settings
from bot.core.config.detection import ProbeCluster
from bot.domain.incidents.probe_findings import ProbeRecorder, ProbeWorker, probe_rows
from bot.core.plugins import Extra
from integrations.clients.etcd import EtcdClient
from integrations.clients.kubernetes import KubernetesClient, connect
from integrations.clients.probes import (Check, apiserver_checks, etcd_checks, nodes_check, pod_check, statefulset_check,
                                 write_path_check)

PROBER: Extra[ProbeWorker] = Extra("prober", "bot.compose.app.probing")  # the black-box prober (when probes are configured)
CUSTOMER_PROBER: Extra[ProbeWorker] = Extra("customer_prober", "bot.compose.app.probing")


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
            for url in cluster.bypass_apiservers:  # the same write, through the bypass path directly
                bypass = connect(cluster.kubeconfig, cluster.kube_context, timeout=timeout)
                bypass.api_client.configuration.host = url.rstrip("/")  # the kubeconfig's user and CA, not its server
                closers.append(bypass)
                check = write_path_check(name, bypass, settings.probes.namespace)
                checks.append(Check(check.cluster, f"write-path {settings.probes.namespace} via {url}",
                                    check.component, check.run))
        if cluster.etcd:
            etcd = EtcdClient(cluster.etcd, timeout=timeout)
            closers.append(etcd)
            for endpoint in etcd.endpoints:
                checks += etcd_checks(name, etcd, endpoint)
    return checks


def build_customer_checks(settings: Settings, closers: list[Any]) -> list[Check]:
    """Pod, StatefulSet and node-readiness probes of the clusters with ``customer_probes: true``."""
    probes = settings.probes
    deadline = max(1.0, probes.customer_timeout_seconds - 1.0)  # leave the runner time to see the answer
    checks: list[Check] = []
    for name, cluster in sorted(probe_clusters(settings).items()):
        if not (cluster.customer_probes and cluster.kubeconfig):
            continue
        client = connect(cluster.kubeconfig, cluster.kube_context, timeout=min(5.0, deadline))
        closers.append(client)
        checks += [pod_check(name, client, probes.namespace, deadline_seconds=deadline),
                   statefulset_check(name, client, probes.namespace, replicas=probes.statefulset_replicas,
                                     deadline_seconds=deadline),
                   nodes_check(name, client)]
    return checks


COMPONENT_OF_KIND = {"write-path": "apiserver", "pod": "workloads", "statefulset": "workloads", "nodes": "workloads"}


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
    runs = CounterMetricFamily("incident_bot_probe_runs", "Black-box probes of a target (the SLOs' events).",
                               labels=names)
    failed = CounterMetricFamily("incident_bot_probe_failures", "Black-box probes of a target that failed.",
                                 labels=names)
    slow = CounterMetricFamily("incident_bot_probe_slow", "Probes that answered correctly but slower than "
                               "probes.slow_seconds for their kind.", labels=names)
    for row in rows:
        kind = row.target.split(" ", 1)[0]
        tags = [row.cluster, row.target, COMPONENT_OF_KIND.get(kind, kind)]
        up.add_metric(tags, 1 if row.ok else 0)
        latency.add_metric(tags, row.latency_ms / 1000)
        failures.add_metric(tags, row.consecutive_failures)
        runs.add_metric(tags, row.runs_total or 0)
        failed.add_metric(tags, row.failures_total or 0)
        slow.add_metric(tags, row.slow_total or 0)
    return [up, latency, failures, runs, failed, slow]


def register(bot: Bot) -> None:
    settings = bot.settings
    bot.metric_sources.append(probe_metrics)
    handlers_slo.register(bot.dispatcher)
    closers: list[Any] = []
    checks = build_checks(settings, closers)
    customer = build_customer_checks(settings, closers)
    bot.on_stop.extend(c.close for c in closers)
    if customer:  # slower and costlier than /readyz: their own worker, interval and deadline
        recorder = ProbeRecorder(bot.db, settings, bot.clock, bot.services.incidents)
        customer_worker = ProbeWorker(recorder, lambda: customer, interval=settings.probes.customer_interval_seconds,
                                      timeout=settings.probes.customer_timeout_seconds,
                                      on_change=lambda: wake_senders(bot), name="customer-prober")
        bot.workers.append(customer_worker)
        bot.services.extras.put(CUSTOMER_PROBER, customer_worker)
    if not checks:
        return
    recorder = ProbeRecorder(bot.db, settings, bot.clock, bot.services.incidents)
    worker = ProbeWorker(recorder, lambda: checks, interval=settings.probes.interval_seconds,
                         timeout=settings.probes.timeout_seconds, on_change=lambda: wake_senders(bot))
    bot.workers.append(worker)
    bot.services.extras.put(PROBER, worker)
