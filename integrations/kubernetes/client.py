"""The bot's Kubernetes client, on the official ``kubernetes`` package.

Requests go through ``ApiClient.param_serialize`` + ``ApiClient.call_api`` (the
generic path under the typed APIs) so that one code path serves
``flowcontrol.apiserver.k8s.io/v1`` and ``v1beta3`` (the typed v1beta3 API is
gone from recent clients), returns plain dicts, and exposes response headers
(``X-Kubernetes-PF-FlowSchema-UID``).  No discovery is needed.

Every call has a timeout; every failure is an ``IntegrationError`` (or
``IntegrationTimeout``) whose sentence names the operation and the URL.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlencode

import kubernetes.client
import kubernetes.config
import urllib3

from bot.errors import ConfigError, IntegrationError, IntegrationTimeout
from integrations.kubernetes.apf import ApfRequest, UserLoad, is_dangling, parse_dump_requests, top_users
from integrations.kubernetes.apf_shortcuts import ApfShortcuts

FLOWCONTROL_GROUP = "flowcontrol.apiserver.k8s.io"
FLOWCONTROL_VERSIONS = ("v1", "v1beta3")
DUMP_REQUESTS_PATH = "/debug/api_priority_and_fairness/dump_requests"

# kind -> (plural, namespaced) for kinds the bot reads; others are resolved by discovery.
KNOWN_KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False), "Node": ("nodes", False), "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True), "Pod": ("pods", True), "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True), "Event": ("events", True),
    "Endpoints": ("endpoints", True), "Deployment": ("deployments", True),
    "StatefulSet": ("statefulsets", True), "DaemonSet": ("daemonsets", True),
    "ReplicaSet": ("replicasets", True), "Job": ("jobs", True), "CronJob": ("cronjobs", True),
    "Lease": ("leases", True), "FlowSchema": ("flowschemas", False),
    "PriorityLevelConfiguration": ("prioritylevelconfigurations", False),
    "ClusterRole": ("clusterroles", False), "ClusterRoleBinding": ("clusterrolebindings", False),
    "Role": ("roles", True), "RoleBinding": ("rolebindings", True),
    "APIService": ("apiservices", False), "CustomResourceDefinition": ("customresourcedefinitions", False),
}


class KubernetesApiError(IntegrationError):
    """The apiserver answered with an error, or could not be reached."""

    def __init__(self, message: str, *, operation: str, url: str, status: int | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
        self.status = status
        self.reason = reason
        self.elapsed: float | None = None


class KubernetesTimeout(IntegrationTimeout):
    def __init__(self, message: str, *, operation: str, url: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
        self.elapsed: float | None = None


@dataclass(frozen=True)
class HttpResult:
    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass(frozen=True)
class Health:
    """``/readyz`` or ``/livez``: ``ok`` is the status code verdict (what machines may use)."""

    endpoint: str
    ok: bool
    status: int
    body: str
    seconds: float


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


def _status_message(body: str) -> tuple[str | None, str | None]:
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return None, (body or "").strip()[:200] or None
    if isinstance(data, dict):
        return data.get("reason"), data.get("message")
    return None, None


class KubernetesClient(ApfShortcuts):
    """One apiserver (or load balancer) reached through one identity.

    Build with :func:`connect` (kubeconfig) or :meth:`from_host` (host + token).
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, *, timeout: float = 5.0) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self._flowcontrol_version: str | None = None
        self._kind_cache: dict[tuple[str, str], tuple[str, bool]] = {}
        self._imp: tuple[str, tuple[str, ...]] | None = None

    # ------------------------------------------------------------------ factory
    @classmethod
    def from_host(cls, host: str, token: str | None = None, *, verify_ssl: bool = True,
                  ca_cert: str | None = None, timeout: float = 5.0,
                  tls_server_name: str | None = None) -> "KubernetesClient":
        if not host or not re.match(r"^https?://", host):
            raise ConfigError(f"Kubernetes host must be an http(s) URL, got {host!r}")
        cfg = kubernetes.client.Configuration()
        cfg.host = host.rstrip("/")
        if token:
            cfg.api_key = {"authorization": f"Bearer {token}"}
        cfg.verify_ssl = verify_ssl
        if ca_cert:
            cfg.ssl_ca_cert = ca_cert
        if tls_server_name:
            cfg.tls_server_name = tls_server_name
        return cls(_api_client(cfg), timeout=timeout)

    @property
    def host(self) -> str:
        return self.api_client.configuration.host

    def impersonating(self, user: str, groups: Sequence[str] = ()) -> "KubernetesClient":
        """A client whose requests carry ``Impersonate-User``/``Impersonate-Group``."""
        other = KubernetesClient(_api_client(self.api_client.configuration), timeout=self.timeout)
        other._imp = (user, tuple(groups))
        other._flowcontrol_version = self._flowcontrol_version
        return other

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:  # pragma: no cover - best effort
            pass

    # ------------------------------------------------------------------ transport
    def request(self, method: str, path: str, *, operation: str, query: Mapping[str, Any] | None = None,
                body: Any = None, headers: Mapping[str, str] | None = None,
                accept: str = "application/json", ok: Sequence[int] = (),
                timeout: float | None = None) -> HttpResult:
        """One HTTP request; non-2xx raises unless its status is in ``ok``."""
        timeout = self.timeout if timeout is None else timeout
        header_params = {"Accept": accept}
        if body is not None:
            header_params["Content-Type"] = "application/json"
        header_params.update(headers or {})
        imp = self._imp
        url = self.host + path + ("?" + urlencode(query, doseq=True) if query else "")
        try:
            method_, full_url, hdrs, body_, post = self.api_client.param_serialize(
                method=method, resource_path=path, query_params=list((query or {}).items()) or None,
                header_params=header_params, body=body, auth_settings=["BearerToken"])
            if imp:
                # One Impersonate-Group header line per group (the apiserver does not split commas).
                hdrs = urllib3.HTTPHeaderDict(hdrs)
                hdrs["Impersonate-User"] = imp[0]
                for group in _explicit_groups(imp[0], imp[1]):
                    hdrs.add("Impersonate-Group", group)
            url = full_url
            response = self.api_client.call_api(method_, full_url, header_params=hdrs, body=body_,
                                                 post_params=post, _request_timeout=timeout)
            response.read()
        except kubernetes.client.ApiException as e:  # SSL problems and similar
            raise KubernetesApiError(
                f"Kubernetes API {operation} failed at {url}: {e.reason or e}",
                operation=operation, url=url, status=e.status or None) from e
        except urllib3.exceptions.HTTPError as e:
            cause = getattr(e, "reason", None) or e
            refused = isinstance(cause, urllib3.exceptions.NewConnectionError) or isinstance(
                e, urllib3.exceptions.NewConnectionError)  # (a ConnectTimeoutError subclass in urllib3)
            if not refused and (isinstance(cause, urllib3.exceptions.TimeoutError)
                                or isinstance(e, urllib3.exceptions.TimeoutError)):
                raise KubernetesTimeout(
                    f"Kubernetes API {operation} timed out after {timeout:g}s at {url}",
                    operation=operation, url=url) from e
            raise KubernetesApiError(
                f"Kubernetes API {operation} failed: cannot reach {url} ({type(cause).__name__}: {cause})",
                operation=operation, url=url) from e
        except OSError as e:
            raise KubernetesApiError(f"Kubernetes API {operation} failed: cannot reach {url} ({e})",
                                     operation=operation, url=url) from e
        text = (response.data or b"").decode("utf-8", errors="replace")
        # case-insensitive: Go canonicalises header names (X-Kubernetes-Pf-Flowschema-Uid)
        result = HttpResult(response.status, text, urllib3.HTTPHeaderDict(response.headers or {}))
        if 200 <= response.status < 300 or response.status in ok:
            return result
        reason, message = _status_message(text)
        raise KubernetesApiError(
            f"Kubernetes API {operation} failed at {url}: HTTP {response.status}"
            + (f" {reason}" if reason else "") + (f": {message}" if message else ""),
            operation=operation, url=url, status=response.status, reason=reason)

    def _json(self, method: str, path: str, *, operation: str, **kw: Any) -> Any:
        result = self.request(method, path, operation=operation, **kw)
        try:
            return result.json()
        except ValueError as e:
            raise KubernetesApiError(
                f"Kubernetes API {operation} at {self.host}{path} answered something that is not JSON: "
                f"{result.text[:120]!r}", operation=operation, url=self.host + path,
                status=result.status) from e

    # ------------------------------------------------------------------ basics
    def server_version(self) -> dict:
        """``/version``: ``gitVersion``, ``major``, ``minor`` ..."""
        return self._json("GET", "/version", operation="read the server version")

    def server_minor_version(self) -> str:
        """``"1.30"`` style version, for schema validation."""
        v = self.server_version()
        major = re.sub(r"\D", "", str(v.get("major", ""))) or "1"
        minor = re.sub(r"\D", "", str(v.get("minor", "")))
        if not minor:
            m = re.match(r"v?(\d+)\.(\d+)", str(v.get("gitVersion", "")))
            major, minor = (m.group(1), m.group(2)) if m else (major, "0")
        return f"{major}.{minor}"

    def watch(self, path: str, *, operation: str, query: Mapping[str, Any], seconds: float) -> Iterator[dict]:
        """Watch events of the collection ``path`` for at most ``seconds`` (one request; see ``watch.py``)."""
        from integrations.kubernetes.watch import watch_events

        return watch_events(self, path, operation=operation, query=query, seconds=seconds)

    def raw_get(self, path: str, *, query: Mapping[str, Any] | None = None, accept: str = "*/*",
                operation: str | None = None) -> str:
        """GET a path (``/metrics``, ``/readyz``, debug endpoints) and return the body text."""
        return self.request("GET", path, query=query, accept=accept,
                            operation=operation or f"GET {path}").text

    def health(self, endpoint: str = "readyz", *, verbose: bool = False) -> Health:
        """``/readyz`` or ``/livez``; a 5xx is an answer (``ok=False``), not an error."""
        path = "/" + endpoint.strip("/")
        start = time.monotonic()
        result = self.request("GET", path, query={"verbose": "1"} if verbose else None, accept="*/*",
                              operation=f"check {path}", ok=tuple(range(400, 600)))
        return Health(path, result.status == 200, result.status, result.text, time.monotonic() - start)

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

    # ------------------------------------------------------------------ generic objects
    def _resolve(self, api_version: str, kind: str) -> tuple[str, bool]:
        if kind in KNOWN_KINDS:
            return KNOWN_KINDS[kind]
        key = (api_version, kind)
        if key not in self._kind_cache:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                data = self._json("GET", path, operation=f"discover {api_version}")
                for r in data.get("resources", []):
                    if r.get("kind") == kind and "/" not in r.get("name", ""):
                        self._kind_cache[key] = (r["name"], bool(r.get("namespaced")))
                        break
            except IntegrationError:
                pass
            if key not in self._kind_cache:
                low = kind.lower()
                plural = low[:-1] + "ies" if low.endswith("y") else low + ("es" if low.endswith("s") else "s")
                self._kind_cache[key] = (plural, True)
        return self._kind_cache[key]

    @staticmethod
    def object_path(api_version: str, plural: str, name: str | None = None,
                    namespace: str | None = None) -> str:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        ns = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """An object as a dict, or None when it does not exist."""
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, name, namespace if namespaced else None)
        result = self.request("GET", path, operation=f"get {kind} {_qual(namespace, name)}", ok=(404,))
        return None if result.status == 404 else result.json()

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None,
                     label_selector: str | None = None) -> list[dict]:
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, None, namespace if namespaced else None)
        data = self._json("GET", path, operation=f"list {plural}",
                          query={"labelSelector": label_selector} if label_selector else None)
        return list(data.get("items") or [])

    def create_object(self, manifest: Mapping[str, Any], *, exist_ok: bool = False,
                      dry_run: bool = False) -> dict:
        """Create; with ``exist_ok`` a 409 returns the existing object instead of failing."""
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        if not api_version or not kind:
            raise KubernetesApiError("a manifest needs apiVersion and kind", operation="create",
                                     url=self.host)
        meta = manifest.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, None, namespace if namespaced else None)
        op = f"create {kind} {_qual(namespace, name)}"
        result = self.request("POST", path, operation=op, body=dict(manifest),
                              query={"dryRun": "All"} if dry_run else None, ok=(409,) if exist_ok else ())
        if result.status == 409:
            existing = self.get_object(api_version, kind, name, namespace)
            if existing is None:  # deleted meanwhile: try once more
                return self.create_object(manifest, exist_ok=False, dry_run=dry_run)
            return existing
        return result.json()

    def replace_object(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict:
        """PUT the whole object; with ``metadata.resourceVersion`` a concurrent change is a 409 Conflict."""
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        meta = manifest.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        if not api_version or not kind or not name:
            raise KubernetesApiError("a manifest needs apiVersion, kind and metadata.name", operation="replace",
                                     url=self.host)
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, name, namespace if namespaced else None)
        return self._json("PUT", path, operation=f"replace {kind} {_qual(namespace, name)}", body=dict(manifest),
                          query={"dryRun": "All"} if dry_run else None)

    def delete_object(self, api_version: str, kind: str, name: str, namespace: str | None = None,
                      *, missing_ok: bool = True) -> bool:
        """Delete; returns False when it was already gone (and ``missing_ok``)."""
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, name, namespace if namespaced else None)
        result = self.request("DELETE", path, operation=f"delete {kind} {_qual(namespace, name)}",
                              body={"kind": "DeleteOptions", "apiVersion": "v1",
                                    "propagationPolicy": "Background"},
                              ok=(404,) if missing_ok else ())
        return result.status != 404

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
            e.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
            raise
        return Timed("ensure-namespace", time.monotonic() - start, existing)

    def _timed(self, operation: str, fn: Any) -> Timed:
        start = time.monotonic()
        try:
            value = fn()
        except IntegrationError as e:
            e.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
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


def _explicit_groups(user: str, groups: Sequence[str]) -> list[str]:
    """The groups to impersonate explicitly.

    A ServiceAccount's groups (``system:serviceaccounts``, ``system:serviceaccounts:<ns>``,
    ``system:authenticated``) come with its user name: the apiserver adds them itself when no
    group is named, and the caller then needs only ``impersonate`` on that ServiceAccount, not
    on groups (least privilege: impersonating groups would let one claim ``system:masters``).
    """
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        implied = {"system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", "system:authenticated"}
        return [g for g in groups if g not in implied]
    return list(groups)


def _qual(namespace: str | None, name: str | None) -> str:
    return f"{namespace}/{name}" if namespace else str(name)


def _api_client(cfg: kubernetes.client.Configuration) -> kubernetes.client.ApiClient:
    # Fail fast: no urllib3 retries hiding an apiserver that is down (the caller decides).
    cfg.retries = False
    return kubernetes.client.ApiClient(cfg)


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
    return KubernetesClient(_api_client(cfg), timeout=timeout)
