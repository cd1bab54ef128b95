"""A Kubernetes apiserver stand-in for fast unit tests (never the sandbox): kmock's emulator over real HTTP.

``ApiServerStandIn`` runs kmock's ``KubernetesEmulator`` (an in-memory object
store speaking the Kubernetes REST API) on 127.0.0.1 with an ephemeral port,
in a background thread with its own event loop, so the real, synchronous
``kubernetes`` client can talk to it.  On top of kmock it serves:

* ``/readyz``, ``/livez``, ``/healthz`` -- ``ok``, or 500 after ``set_healthy(False)``;
* ``/metrics`` -- Prometheus text with settable APF series (counters may grow
  at a set rate, so ``rate()`` in a real Prometheus sees traffic);
* ``/debug/api_priority_and_fairness/dump_requests`` -- the apiserver's
  tabwriter CSV, built from settable in-flight request rows;
* ``/version`` -- the configured Kubernetes version;
* ``/api/v1/namespaces[/NAME]`` -- kmock 0.8 cannot parse these paths (500),
  so namespaces are served here; namespaced creates need the namespace;
* ``X-Kubernetes-PF-FlowSchema-UID`` / ``-PriorityLevel-UID`` response
  headers from honest APF matching of the (impersonated) user against the
  stored FlowSchemas;
* FlowSchema ``status.conditions`` (``Dangling``) computed at read time, uids,
  creationTimestamp, 201 on create, ``?dryRun=All`` on create, list ``kind``.

Bootstrap FlowSchemas/PriorityLevelConfigurations like a real apiserver's
(``exempt``, ``probes``, ``service-accounts``, ``global-default``,
``catch-all``...) are stored at start unless ``bootstrap=False``.

Limits (kmock 0.8): PUT (replace) is not served; PATCH is a plain JSON merge;
no resourceVersion semantics, no field/label selectors, no validation.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import kmock
import yaml

from integrations.clients.kubernetes.apf import RequestAttributes, effective_groups, matching_flow_schema
from tests.support.apiserver_apf import (FLOWCONTROL_GROUP, SERVER_CONCURRENCY_LIMIT, bootstrap_flow_schemas,
                                        bootstrap_priority_levels)
from tests.support.apiserver_emulator import RequestRecord, _close_server, _Emulator, _now_str
from tests.support.apiserver_metrics import InflightRequest, SettableMetrics, _Series

__all__ = ["ApiServerStandIn", "FLOWCONTROL_GROUP", "InflightRequest", "RequestRecord", "SERVER_CONCURRENCY_LIMIT",
           "bootstrap_flow_schemas", "bootstrap_priority_levels"]

# plural -> (kind, namespaced)
_CORE_RESOURCES = {
    "configmaps": ("ConfigMap", True),
    "pods": ("Pod", True),
    "secrets": ("Secret", True),
    "services": ("Service", True),
    "serviceaccounts": ("ServiceAccount", True),
    "events": ("Event", True),
    "nodes": ("Node", False),
}
_FLOWCONTROL_RESOURCES = {
    "flowschemas": ("FlowSchema", False),
    "prioritylevelconfigurations": ("PriorityLevelConfiguration", False),
}
_OTHER_RESOURCES = {
    ("apps", "v1"): {"deployments": ("Deployment", True), "statefulsets": ("StatefulSet", True),
                     "daemonsets": ("DaemonSet", True)},
    ("coordination.k8s.io", "v1"): {"leases": ("Lease", True)},
}


# --------------------------------------------------------------------------
# The stand-in


class ApiServerStandIn(SettableMetrics):
    """Start with ``start()`` (or ``with``); ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(
        self,
        *,
        kubernetes_version: str = "1.30.2",
        flowcontrol_versions: Sequence[str] = ("v1",),
        bootstrap: bool = True,
        tokens: Mapping[str, tuple[str, Sequence[str]]] | None = None,
        default_user: tuple[str, Sequence[str]] = ("kubernetes-admin", ("system:masters",)),
    ) -> None:
        self.kubernetes_version = kubernetes_version
        self.flowcontrol_versions = tuple(flowcontrol_versions)
        self.bootstrap = bootstrap
        # bearer token -> (user, groups); unknown tokens are the default user; no token: anonymous
        self.tokens = dict(tokens or {})
        self.default_user = (default_user[0], tuple(default_user[1]))
        self.healthy = True
        self.delay = 0.0  # seconds every answer except health probes waits (an overloaded apiserver)
        self.namespaces: dict[str, dict] = {}
        self.request_log: list[RequestRecord] = []
        self._series: dict[str, dict[tuple, _Series]] = {}
        self._lock = threading.RLock()
        self._inflight: list[InflightRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._emulator: _Emulator | None = None
        self._port: int | None = None
        self._startup_error: BaseException | None = None

    # ---- lifecycle
    def start(self, timeout: float = 10.0) -> "ApiServerStandIn":
        if self._thread is not None:
            raise RuntimeError("the apiserver stand-in is already started")
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="apiserver-standin", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the apiserver stand-in did not start in time")
        if self._startup_error is not None:
            raise RuntimeError(f"the apiserver stand-in failed to start: {self._startup_error!r}")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as e:  # pragma: no cover - reported to start()
            self._startup_error = e
            ready.set()
        finally:
            # connections still open (HAProxy checks, Prometheus scrapes) end here, not as
            # "Task was destroyed but it is pending!" when the loop is collected
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        emulator = _Emulator()
        emulator.standin = self
        self._emulator = emulator
        for version in self.flowcontrol_versions:
            for plural, (kind, namespaced) in _FLOWCONTROL_RESOURCES.items():
                emulator.resources[f"{FLOWCONTROL_GROUP}/{version}/{plural}"] = kmock.ResourceInfo(
                    kind=kind, namespaced=namespaced, singular=kind.lower(),
                    verbs={"create", "delete", "get", "list", "patch", "watch"}, subresources={"status"})
        for plural, (kind, namespaced) in _CORE_RESOURCES.items():
            emulator.resources[f"v1/{plural}"] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, singular=kind.lower(),
                verbs={"create", "delete", "get", "list", "patch", "watch"})
        for (group, version), resources in _OTHER_RESOURCES.items():
            for plural, (kind, namespaced) in resources.items():
                emulator.resources[f"{group}/{version}/{plural}"] = kmock.ResourceInfo(
                    kind=kind, namespaced=namespaced, singular=kind.lower(),
                    verbs={"create", "delete", "get", "list", "patch", "watch"})
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.namespaces[ns] = self._decorate({"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": ns}, "status": {"phase": "Active"}})
        if self.bootstrap:
            version = self.flowcontrol_versions[0] if self.flowcontrol_versions else None
            if version:
                for pl in bootstrap_priority_levels():
                    self._store(version, "prioritylevelconfigurations", pl)
                for fs in bootstrap_flow_schemas():
                    self._store(version, "flowschemas", fs)
        self._stop = asyncio.Event()
        async with emulator:
            server = kmock.Server(emulator)
            await server.__aenter__()
            try:
                self._port = server.port
                ready.set()
                await self._stop.wait()
            finally:
                await _close_server(server)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: afterwards connections to ``url`` are refused."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "ApiServerStandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the apiserver stand-in is not started")
        return self._port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _in_loop(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn`` on the server's loop (objects are owned by that thread)."""
        if self._loop is None or not self.running or threading.current_thread() is self._thread:
            return fn()

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    # ---- health
    def set_healthy(self, healthy: bool = True) -> None:
        """Flip /readyz, /livez and /healthz between ``ok`` and a failing etcd check (500)."""
        self.healthy = healthy

    def set_delay(self, seconds: float) -> None:
        """Make every answer except /readyz, /livez, /healthz wait ``seconds`` (client timeouts)."""
        self.delay = float(seconds)

    # ---- kubeconfig
    def write_kubeconfig(self, path: str | Path, *, token: str = "standin-admin-token",
                         context: str = "standin", user: str = "standin-admin") -> Path:
        path = Path(path)
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        return path

    def version_info(self) -> dict:
        parts = self.kubernetes_version.split(".")
        return {"major": parts[0], "minor": parts[1], "gitVersion": f"v{self.kubernetes_version}",
                "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.22.0", "compiler": "gc", "platform": "linux/amd64"}

    # ---- objects
    def _decorate(self, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now_str())
        meta.setdefault("resourceVersion", str(int(time.time() * 1000) % 10_000_000))
        meta.setdefault("generation", 1)
        return obj

    def _resource_info(self, group: str | None, version: str | None, plural: str | None) -> tuple[str, bool] | None:
        if group == FLOWCONTROL_GROUP:
            return _FLOWCONTROL_RESOURCES.get(plural or "") if version in self.flowcontrol_versions else None
        if group == "" and version == "v1":
            return _CORE_RESOURCES.get(plural or "")
        return _OTHER_RESOURCES.get((group or "", version or ""), {}).get(plural or "")

    def _store(self, version: str, plural: str, obj: dict) -> None:
        kind = _FLOWCONTROL_RESOURCES[plural][0]
        obj = self._decorate({"apiVersion": f"{FLOWCONTROL_GROUP}/{version}", "kind": kind, **copy.deepcopy(obj)})
        assert self._emulator is not None
        self._emulator.objects[(kmock.resource(FLOWCONTROL_GROUP, version, plural), None,
                                obj["metadata"]["name"])] = obj

    def _live(self, plural: str, group: str = FLOWCONTROL_GROUP) -> list[dict]:
        if self._emulator is None:
            return []
        out = []
        for (res, _ns, _name), obj in list(self._emulator.objects.items()):
            if res.group == group and res.plural == plural and not obj.deleted:
                out.append(obj.raw)
        return out

    def flow_schemas(self) -> list[dict]:
        return self._in_loop(lambda: [copy.deepcopy(o) for o in self._live("flowschemas")])

    def priority_levels(self) -> list[dict]:
        return self._in_loop(lambda: [copy.deepcopy(o) for o in self._live("prioritylevelconfigurations")])

    def object(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        """A stored object (for assertions), or None."""
        group, _, version = api_version.rpartition("/")

        def get() -> dict | None:
            assert self._emulator is not None
            key = (kmock.resource(group, version, plural), namespace, name)
            if key in self._emulator.objects and not self._emulator.objects[key].deleted:
                return copy.deepcopy(self._emulator.objects[key].raw)
            return None
        return self._in_loop(get)

    def _add_flow_schema_status(self, fs: dict) -> None:
        pl_name = ((fs.get("spec") or {}).get("priorityLevelConfiguration") or {}).get("name")
        existing = {p["metadata"]["name"] for p in self._live("prioritylevelconfigurations")}
        dangling = pl_name not in existing
        fs["status"] = {"conditions": [{
            "type": "Dangling",
            "status": "True" if dangling else "False",
            "lastTransitionTime": fs.get("metadata", {}).get("creationTimestamp", _now_str()),
            "reason": "NotFound" if dangling else "Found",
            "message": (f"This FlowSchema references the PriorityLevelConfiguration object named "
                        f"\"{pl_name}\" but there is no such object" if dangling else
                        f"This FlowSchema references the PriorityLevelConfiguration object named "
                        f"\"{pl_name}\" and it exists"),
        }]}

    # ---- classification
    def _identify(self, headers: Any) -> tuple[str, list[str]]:
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            user, groups = self.tokens.get(token, self.default_user)
        else:
            user, groups = "system:anonymous", ("system:unauthenticated",)
        imp_user = headers.get("Impersonate-User")
        if imp_user:
            user = imp_user
            groups = tuple(headers.getall("Impersonate-Group", []) if hasattr(headers, "getall")
                           else ([headers["Impersonate-Group"]] if "Impersonate-Group" in headers else []))
        return user, effective_groups(user, list(groups))

    def _request_attributes(self, method: str, path: str, query: Mapping[str, str],
                            user: str, groups: Sequence[str]) -> RequestAttributes:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            verb = {"GET": "get", "HEAD": "head", "POST": "post", "PUT": "put", "PATCH": "patch",
                    "DELETE": "delete"}.get(method, method.lower())
            return RequestAttributes(user=user, groups=tuple(groups), verb=verb, path=path,
                                     is_resource_request=False)
        namespace = ""
        if len(rest) > 1 and rest[0] == "namespaces":
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in ("status", "finalize"):
                rest = rest[2:]
        resource = rest[0] if rest else ""
        name = rest[1] if len(rest) > 1 else ""
        sub = "/".join(rest[2:])
        if method == "GET":
            verb = "watch" if query.get("watch") in ("true", "1") else ("get" if name else "list")
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())
        return RequestAttributes(user=user, groups=tuple(groups), verb=verb, api_group=group,
                                 resource=resource, subresource=sub, namespace=namespace, path=path)

    def _classify(self, attrs: RequestAttributes) -> tuple[dict | None, dict | None]:
        pls = {p["metadata"]["name"]: p for p in self._live("prioritylevelconfigurations")}
        fs = matching_flow_schema(self._live("flowschemas"), attrs, pls.keys())
        if fs is None:
            return None, None
        return dict(fs), pls.get(fs["spec"]["priorityLevelConfiguration"]["name"])

    def classify(self, user: str, groups: Sequence[str] = (), *, verb: str = "list",
                 resource: str = "pods", api_group: str = "", namespace: str = "") -> dict | None:
        """The FlowSchema (dict) a request of ``user`` lands in now, or None."""
        attrs = RequestAttributes.for_user(user, groups, verb=verb, resource=resource,
                                           api_group=api_group, namespace=namespace)
        return self._in_loop(lambda: copy.deepcopy(self._classify(attrs)[0]))
