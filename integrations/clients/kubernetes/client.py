"""The bot's Kubernetes client, on the official ``kubernetes`` package: what the bot asks an apiserver.

``KubernetesClient`` is the transport (``transport``: one request, its errors, impersonation)
with the generic object calls (``resources``) and what the bot needs on top: API Priority and
Fairness (the flowcontrol version served, ``v1`` or ``v1beta3``, dangling FlowSchemas, where a
user's requests land, the request dump), the write-path probe, and watches.  No discovery is
needed for the kinds the bot knows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Self, Sequence

import kubernetes.client
import kubernetes.config

from bot.core.errors import ConfigError, IntegrationError
from integrations.clients.kubernetes.apf import ApfRequest, UserLoad, is_dangling, parse_dump_requests, top_users
from integrations.clients.kubernetes.apf_shortcuts import ApfShortcuts
from integrations.clients.kubernetes.resources import ResourceClient
from integrations.clients.kubernetes.transport import KubernetesApiError, api_client_for
from integrations.clients.kubernetes.watch import watch_events

FLOWCONTROL_GROUP = "flowcontrol.apiserver.k8s.io"
FLOWCONTROL_VERSIONS = ("v1", "v1beta3")
DUMP_REQUESTS_PATH = "/debug/api_priority_and_fairness/dump_requests"


@dataclass(frozen=True)
class Timed:
    """A probe operation's result and how long it took."""

    operation: str
    seconds: float
    value: Any = None


@dataclass(frozen=True)
class WriteProbeResult:
    namespace: str
    name: str
    steps: tuple[Timed, ...]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def step(self, operation: str) -> Timed:
        return next(s for s in self.steps if s.operation == operation)


@dataclass(frozen=True)
class Classification:
    """Where a request lands in APF, from the response headers (and names looked up)."""

    flow_schema_uid: str | None
    priority_level_uid: str | None
    flow_schema: str | None = None
    priority_level: str | None = None
    status: int = 0


class KubernetesClient(ResourceClient, ApfShortcuts):
    """One apiserver (or load balancer) reached through one identity.

    Build with :func:`connect` (kubeconfig) or :meth:`from_host` (host + token).
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, *, timeout: float = 5.0) -> None:
        super().__init__(api_client, timeout=timeout)
        self._flowcontrol_version: str | None = None

    def impersonating(self, user: str, groups: Sequence[str] = ()) -> Self:
        """As the transport's, keeping the flowcontrol version already found (one probe less per classify)."""
        other = super().impersonating(user, groups)
        other._flowcontrol_version = self._flowcontrol_version
        return other

    def watch(self, path: str, *, operation: str, query: Mapping[str, Any], seconds: float) -> Iterator[dict]:
        """Watch events of the collection ``path`` for at most ``seconds`` (one request; see ``watch.py``)."""
        return watch_events(self, path, operation=operation, query=query, seconds=seconds)

    def metrics_text(self) -> str:
        return self.raw_get("/metrics", accept="text/plain", operation="read /metrics")

    def dump_requests_text(self, *, include_details: bool = True) -> str:
        return self.raw_get(DUMP_REQUESTS_PATH,
                            query={"includeRequestDetails": "1"} if include_details else None,
                            accept="text/plain", operation="read the APF request dump")

    def dump_requests(self, *, include_details: bool = True) -> list[ApfRequest]:
        text = self.dump_requests_text(include_details=include_details)
        try:
            return parse_dump_requests(text)
        except ValueError as e:
            raise KubernetesApiError(
                f"Kubernetes API read the APF request dump at {self.host}{DUMP_REQUESTS_PATH}: {e}",
                operation="read the APF request dump", url=self.host + DUMP_REQUESTS_PATH) from e

    def top_users(self, n: int = 5) -> list[UserLoad]:
        return top_users(self.dump_requests(include_details=True), n)

    # ------------------------------------------------------------------ APF
    def flowcontrol_version(self, *, refresh: bool = False) -> str:
        """``"v1"`` or ``"v1beta3"``: the flowcontrol version this server serves (v1 tried first)."""
        if self._flowcontrol_version and not refresh:
            return self._flowcontrol_version
        failures = []
        for version in FLOWCONTROL_VERSIONS:
            path = f"/apis/{FLOWCONTROL_GROUP}/{version}/prioritylevelconfigurations"
            result = self.request("GET", path, query={"limit": "1"},
                                  operation=f"probe flowcontrol {version}", ok=(404, 405))
            if 200 <= result.status < 300:
                self._flowcontrol_version = version
                return version
            failures.append(f"{version}: HTTP {result.status}")
        raise KubernetesApiError(
            f"Kubernetes API at {self.host} serves neither flowcontrol.apiserver.k8s.io/v1 nor v1beta3 "
            f"({'; '.join(failures)})", operation="find the flowcontrol version", url=self.host, status=404)

    @property
    def flowcontrol_api_version(self) -> str:
        return f"{FLOWCONTROL_GROUP}/{self.flowcontrol_version()}"

    def dangling_flow_schemas(self) -> list[str]:
        """Names of FlowSchemas whose PriorityLevelConfiguration does not exist.

        Uses the server's ``Dangling`` condition; where a schema has no such
        condition yet (just created), checks the PLC list itself.
        """
        schemas = self.list_flow_schemas()
        levels: set[str] | None = None
        out = []
        for fs in schemas:
            verdict = is_dangling(fs)
            if verdict is None:
                if levels is None:
                    levels = {p["metadata"]["name"] for p in self.list_priority_levels()}
                pl = ((fs.get("spec") or {}).get("priorityLevelConfiguration") or {}).get("name")
                verdict = pl not in levels
            if verdict:
                out.append(fs["metadata"]["name"])
        return sorted(out)

    def classify(self, user: str, groups: Sequence[str] = (), *,
                 path: str = "/api/v1/namespaces/default/pods") -> Classification:
        """Send a GET as ``user`` (impersonated) and read where APF put it.

        The response status does not matter (even a 403 is classified: APF
        runs before authorization); the UIDs are mapped back to names.
        """
        imp = self.impersonating(user, groups)
        try:
            result = imp.request("GET", path, operation=f"classify a request of {user}",
                                 ok=tuple(range(400, 600)))
        finally:
            imp.close()
        fs_uid = result.headers.get("X-Kubernetes-PF-FlowSchema-UID") or None
        pl_uid = result.headers.get("X-Kubernetes-PF-PriorityLevel-UID") or None
        fs_name = pl_name = None
        if fs_uid:
            fs_name = next((f["metadata"]["name"] for f in self.list_flow_schemas()
                            if f.get("metadata", {}).get("uid") == fs_uid), None)
        if pl_uid:
            pl_name = next((p["metadata"]["name"] for p in self.list_priority_levels()
                            if p.get("metadata", {}).get("uid") == pl_uid), None)
        return Classification(fs_uid, pl_uid, fs_name, pl_name, result.status)

    # ------------------------------------------------------------------ write-path probe
    def ensure_namespace(self, namespace: str) -> Timed:
        start = time.monotonic()
        try:
            existing = self.get_object("v1", "Namespace", namespace)
            if existing is None:
                existing = self.create_object({"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": namespace}}, exist_ok=True)
        except IntegrationError as e:
            e.elapsed = time.monotonic() - start
            raise
        return Timed("ensure-namespace", time.monotonic() - start, existing)

    def _timed(self, operation: str, fn: Any) -> Timed:
        start = time.monotonic()
        try:
            value = fn()
        except IntegrationError as e:
            e.elapsed = time.monotonic() - start
            raise
        return Timed(operation, time.monotonic() - start, value)

    def create_configmap(self, namespace: str, name: str, data: Mapping[str, str] | None = None,
                         labels: Mapping[str, str] | None = None) -> Timed:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
                "data": dict(data or {})}
        return self._timed("create", lambda: self.create_object(body))

    def read_configmap(self, namespace: str, name: str) -> Timed:
        def read() -> dict:
            obj = self.get_object("v1", "ConfigMap", name, namespace)
            if obj is None:
                raise KubernetesApiError(
                    f"Kubernetes API read ConfigMap {namespace}/{name} at {self.host}: it does not exist",
                    operation="read", url=self.host, status=404)
            return obj
        return self._timed("read", read)

    def delete_configmap(self, namespace: str, name: str) -> Timed:
        return self._timed("delete", lambda: self.delete_object("v1", "ConfigMap", name, namespace,
                                                                  missing_ok=False))

    def write_probe(self, namespace: str = "incident-bot-probe", name: str | None = None,
                    *, ensure_namespace: bool = True) -> WriteProbeResult:
        """Create, read back and delete a small ConfigMap; each step timed.

        A failing step raises (with ``elapsed`` set on the error); a created
        ConfigMap is deleted best-effort when the read fails.
        """
        name = name or f"probe-{uuid.uuid4().hex[:10]}"
        steps: list[Timed] = []
        if ensure_namespace:
            steps.append(self.ensure_namespace(namespace))
        stamp = str(time.time())
        steps.append(self.create_configmap(namespace, name, {"written-at": stamp},
                                           {"app.kubernetes.io/managed-by": "incident-bot"}))
        try:
            read = self.read_configmap(namespace, name)
            if (read.value.get("data") or {}).get("written-at") != stamp:
                raise KubernetesApiError(
                    f"Kubernetes API write probe at {self.host}: ConfigMap {namespace}/{name} read back "
                    f"with other data than written", operation="read", url=self.host)
            steps.append(read)
        except IntegrationError:
            try:
                self.delete_object("v1", "ConfigMap", name, namespace)
            except IntegrationError:
                pass
            raise
        steps.append(self.delete_configmap(namespace, name))
        return WriteProbeResult(namespace, name, tuple(steps))


def connect(kubeconfig: str | None = None, context: str | None = None, *, host: str | None = None,
            token: str | None = None, timeout: float = 5.0, verify_ssl: bool = True) -> KubernetesClient:
    """A client from a kubeconfig file (+ context), or from an explicit host and token."""
    if host:
        return KubernetesClient.from_host(host, token, timeout=timeout, verify_ssl=verify_ssl)
    cfg = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(config_file=kubeconfig, context=context,
                                           client_configuration=cfg, persist_config=False)
    except Exception as e:  # ConfigException, FileNotFoundError, yaml errors
        where = kubeconfig or "the default kubeconfig"
        raise ConfigError(f"KUBECONFIG: cannot load {where}"
                          + (f" (context {context!r})" if context else "") + f": {e}") from e
    return KubernetesClient(api_client_for(cfg), timeout=timeout)
