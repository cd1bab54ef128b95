"""The small interfaces diagnosis uses to look at a cluster.

The domain asks questions through these Protocols only; the composition root
(``bot/compose/app``) wires the real clients (``integrations.clients.prometheus``,
``integrations.clients.kubernetes``, ``integrations.clients.etcd``) and tests wire the fakes
in ``bot.domain.diagnosis.fakes`` (or the integrations' own fakes, which have the
same shape).  Every method may raise; the runner turns any failure into an
*unknown* result, never a crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import httpx


class Metrics(Protocol):
    """Prometheus' query API (``integrations.clients.prometheus.PrometheusClient`` / ``FakePrometheus``)."""

    base_url: str

    def query(self, promql: str, time: Any = None, *, timeout: float | None = None) -> Any: ...

    def query_range(self, promql: str, start: Any, end: Any, step: Any = 15, *,
                    timeout: float | None = None) -> Any: ...


class ClusterReader(Protocol):
    """Kubernetes API reads (``integrations.clients.kubernetes.KubernetesClient`` / ``FakeKubernetes``)."""

    @property
    def host(self) -> str: ...  # read-only: the real client derives it from its configuration

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None: ...

    def raw_get(self, path: str, *, query: Mapping[str, Any] | None = None, accept: str = "*/*",
                operation: str | None = None) -> str: ...

    def health(self, endpoint: str = "readyz", *, verbose: bool = False) -> Any: ...

    def top_users(self, n: int = 5) -> list[Any]: ...


class EtcdReader(Protocol):
    """Health, alarms and hashes of one etcd cluster (``integrations.clients.etcd.EtcdClient``)."""

    endpoints: tuple[str, ...]

    def cluster_summary(self) -> Any: ...

    def alarms(self, endpoint: str | None = None) -> list[Any]: ...

    def hashkv(self, endpoints: Sequence[str] | None = None, *, revision: int = 0) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class HttpAnswer:
    url: str
    status: int | None
    seconds: float
    body: str = ""
    error: str | None = None


class HttpProber(Protocol):
    def get(self, url: str, *, timeout: float, verify: bool | str = True) -> HttpAnswer: ...


class HttpxProber:
    """GET with httpx; a refused connection or a timeout is an answer (``status=None``), not an error.

    One client per TLS-verification choice is kept: building an SSL context
    costs tens of milliseconds, more than a loopback probe itself.
    """

    def __init__(self) -> None:
        self._clients: dict[bool | str, httpx.Client] = {}

    def get(self, url: str, *, timeout: float, verify: bool | str = True) -> HttpAnswer:
        """``verify``: True (the system's CAs), False, or the path of a CA bundle."""
        start = time.monotonic()
        client = self._clients.get(verify)
        if client is None:
            client = self._clients[verify] = httpx.Client(verify=verify, trust_env=False)
        try:
            response = client.get(url, timeout=timeout)
        except httpx.TimeoutException:
            return HttpAnswer(url, None, time.monotonic() - start, error=f"no answer within {timeout:g}s")
        except httpx.HTTPError as exc:
            return HttpAnswer(url, None, time.monotonic() - start, error=f"{type(exc).__name__}: {exc}")
        return HttpAnswer(url, response.status_code, time.monotonic() - start, body=response.text[:300])

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


@dataclass(frozen=True)
class CustomerProbeAnswer:
    """One customer probe run on demand: its outcome and latency, and where a pod stuck.

    ``stuck`` is ``scheduling`` (no node assigned), ``running`` (bound, not running) or ``None``;
    ``stages`` holds the seconds from the probe's start to each stage reached.
    """

    target: str
    ok: bool
    seconds: float
    detail: str
    stuck: str | None = None
    node: str | None = None
    stages: Mapping[str, float | None] = field(default_factory=dict)


class CustomerProber(Protocol):
    """The customer probes (``integrations.clients.probes.customer``) run as a customer would, on demand.

    ``probe`` is ``pod`` (create, scheduled, running), ``statefulset`` (scale up and down) or
    ``bypass`` (the write path through each bypass apiserver: one answer per apiserver). A failed
    probe is an answer (``ok=False``), not an exception; raising means the probe could not be run.
    """

    def run(self, probe: str, *, deadline_seconds: float) -> list[CustomerProbeAnswer]: ...


@dataclass
class ClusterAccess:
    """What diagnosis may ask about one cluster; ``None`` means not configured (checks say unknown)."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)  # the ``cluster`` seen by templates
    metrics: Metrics | None = None
    kubernetes: ClusterReader | None = None
    etcd: Callable[[Sequence[str]], EtcdReader] | None = None
    http: HttpProber = field(default_factory=HttpxProber)
    customer: CustomerProber | None = None  # the customer probes, when the cluster has them

    @property
    def configured(self) -> bool:
        """Diagnosis can look at something in this cluster (otherwise every check would be unknown)."""
        apiservers = self.config.get("apiservers") or {}
        return bool(self.metrics or self.kubernetes or (self.etcd and (self.config.get("etcd") or {}).get("members"))
                    or apiservers.get("main") or apiservers.get("bypass"))

    def close(self) -> None:
        for client in (self.metrics, self.kubernetes, self.http, self.customer):
            closer = getattr(client, "close", None)
            if callable(closer):
                closer()


# cluster name -> access; built by the composition root from ``Settings.clusters``
Backends = Callable[[str], ClusterAccess]
