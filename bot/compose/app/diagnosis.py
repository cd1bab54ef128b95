"""Wiring of diagnosis: real clients per cluster, the procedure library, the worker, the chat verb.

This is the composition root's part of diagnosis: the domain
(``bot.domain.diagnosis``) only knows its small Protocols; here they are filled with
``PrometheusClient``, ``KubernetesClient`` and ``EtcdClient`` built from
``Settings.clusters`` (falling back to the top-level ``PROMETHEUS_URL`` and
``KUBECONFIG``, and to the prober's ``probes.clusters`` endpoints), and the
diagnosis' *proposer* is wired to the playbook engine when one is present.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

from bot.compose.app import customer_probes
from bot.chat import handlers_diagnosis
from bot.core.config import Settings
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.ports import ClusterAccess, ClusterReader, HttpxProber, Metrics
from bot.domain.diagnosis.service import Diagnoser, DiagnosisWorker
from bot.core.errors import IncidentBotError, NotAvailableYet
from bot.chat.plugin import ChatHost
from bot.domain.diagnosis.service import DIAGNOSER
from bot.core.plugins import Extras
from playbooks.engine import PLAYBOOKS

log = logging.getLogger(__name__)


class _Unavailable:
    """Stands in for a client that could not be built: every call raises the reason."""

    host = ""
    base_url = ""

    def __init__(self, error: IncidentBotError) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*_: Any, **__: Any) -> Any:
            raise self._error

        return fail


def cluster_config(settings: Settings, name: str) -> dict[str, Any]:
    """The ``cluster`` templates see: endpoints from ``clusters.NAME`` (or the prober's section)."""
    configured = settings.clusters.get(name)
    if configured is not None:
        data = configured.model_dump()
    else:
        data = {"prometheus_url": None, "kubeconfig": None, "kube_context": None,
                "apiservers": {"main": [], "bypass": []}, "etcd": {"members": []}, "haproxy": {}}
        probes = getattr(settings, "probes", None)
        probe = (getattr(probes, "clusters", None) or {}).get(name)
        if probe is not None:  # the prober knows this cluster's apiservers and etcd members
            data["apiservers"]["main"] = list(getattr(probe, "apiservers", []) or [])
            data["etcd"]["members"] = list(getattr(probe, "etcd", []) or [])
            data["kubeconfig"] = getattr(probe, "kubeconfig", None)
            data["kube_context"] = getattr(probe, "kube_context", None)
    data["name"] = name
    data["prometheus_url"] = data.get("prometheus_url") or settings.prometheus_url
    data["kubeconfig"] = data.get("kubeconfig") or settings.kubeconfig
    return data


class RealBackends:
    """``Backends`` for the running bot: one cached ``ClusterAccess`` per cluster name."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[str, ClusterAccess] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> ClusterAccess:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = self._build(name)
            return self._cache[name]

    def _build(self, name: str) -> ClusterAccess:
        config = cluster_config(self.settings, name)
        timeout = self.settings.diagnosis.check_timeout_seconds
        metrics: Metrics | None = None
        kube: ClusterReader | None = None
        if config["prometheus_url"]:
            from integrations.clients.prometheus import PrometheusClient

            metrics = PrometheusClient(config["prometheus_url"], timeout=timeout)
        if config["kubeconfig"]:
            from integrations.clients.kubernetes import connect

            try:
                kube = connect(config["kubeconfig"], config.get("kube_context"), timeout=timeout)
            except IncidentBotError as exc:
                kube = _Unavailable(exc)

        def etcd(endpoints: Sequence[str]) -> Any:
            from integrations.clients.etcd import EtcdClient

            return EtcdClient(endpoints, timeout=min(timeout, 2.0))

        customer: Any = None
        try:
            customer = customer_probes.for_cluster(self.settings, name, config, timeout)
        except IncidentBotError as exc:  # a bad kubeconfig: the probe checks say why, the others still run
            customer = _Unavailable(exc)
        public = {k: v for k, v in config.items() if k not in ("kubeconfig",)}
        return ClusterAccess(name, public, metrics=metrics, kubernetes=kube, etcd=etcd, http=HttpxProber(),
                             customer=customer)

    def close(self) -> None:
        with self._lock:
            for access in self._cache.values():
                access.close()
            self._cache.clear()


class EngineProposer:
    """The diagnosis' proposer, wired to the playbook engine at call time.

    The engine registers itself as ``PLAYBOOKS`` in ``services.extras`` (a
    ``PlaybookService`` with ``propose(incident, playbook, params,
    requested_by=)`` that plans a run awaiting approval).  Looked up at call
    time, so the order of the extensions does not matter; without an engine
    the proposal says so and the commander runs the playbook by hand.
    """

    def __init__(self, extras: Extras) -> None:
        self.extras = extras

    def __call__(self, *, incident_id: int, playbook: str, params: dict[str, Any], requested_by: str,
                 cluster: str | None = None) -> str | None:
        engine = self.extras.find(PLAYBOOKS)
        if engine is None:
            raise NotAvailableYet("the playbook engine is not available in this build")
        run = engine.propose(incident_id, playbook, params, requested_by=requested_by, cluster=cluster)
        run_id = getattr(run, "id", None)
        state = getattr(run, "state", "awaiting_approval")
        return (f"RUN-{run_id} planned: {playbook}, {str(state).replace('_', ' ')}" if run_id is not None
                else f"proposed playbook {playbook}")


def register(bot: ChatHost) -> None:
    settings: Settings = bot.settings
    library = Library.load(settings.diagnosis.sop_dirs)
    backends = RealBackends(settings)
    bot.on_stop.append(backends.close)
    diagnoser = Diagnoser(bot.services.incidents, library, backends, proposer=EngineProposer(bot.services.extras))
    bot.services.extras.put(DIAGNOSER, diagnoser)
    handlers_diagnosis.register(bot.dispatcher)
    bot.workers.append(DiagnosisWorker(diagnoser, interval=settings.diagnosis.interval_seconds))  # obeys .auto
