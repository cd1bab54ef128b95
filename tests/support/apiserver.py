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
import datetime as _dt
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import aiohttp.web
import kmock
import yaml

from integrations.clients.kubernetes.apf import (
    DUMP_REQUESTS_COLUMNS,
    DUMP_REQUESTS_DETAIL_COLUMNS,
    RequestAttributes,
    effective_groups,
    matching_flow_schema,
)

FLOWCONTROL_GROUP = "flowcontrol.apiserver.k8s.io"
_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(/[^/]+(/status|/finalize)?)?$")
SERVER_CONCURRENCY_LIMIT = 600  # --max-requests-inflight 400 + --max-mutating-requests-inflight 200

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
# Bootstrap APF configuration (k8s.io/apiserver .../flowcontrol/bootstrap/default.go, abridged)


def _plc(name: str, ncs: int, lendable: int, limit: dict | None, exempt: bool = False) -> dict:
    if exempt:
        spec = {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}
    else:
        spec = {"type": "Limited", "limited": {
            "nominalConcurrencyShares": ncs, "lendablePercent": lendable, "limitResponse": limit}}
    return {"metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
            "spec": spec}


def _queue(queues: int, hand: int, length: int) -> dict:
    return {"type": "Queue", "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": length}}


_ALL_RESOURCES = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True,
                  "namespaces": ["*"]}
_ALL_NON_RESOURCES = {"verbs": ["*"], "nonResourceURLs": ["*"]}


def _fs(name: str, prec: int, pl: str, subjects: list, *, by: str | None = "ByUser",
        resource_rules: list | None = None, non_resource_rules: list | None = None) -> dict:
    rule: dict[str, Any] = {"subjects": subjects}
    rule["resourceRules"] = resource_rules if resource_rules is not None else [_ALL_RESOURCES]
    rule["nonResourceRules"] = non_resource_rules if non_resource_rules is not None else [_ALL_NON_RESOURCES]
    spec: dict[str, Any] = {"priorityLevelConfiguration": {"name": pl}, "matchingPrecedence": prec,
                            "rules": [rule]}
    if by:
        spec["distinguisherMethod"] = {"type": by}
    return {"metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
            "spec": spec}


def _user(name: str) -> dict:
    return {"kind": "User", "user": {"name": name}}


def _group(name: str) -> dict:
    return {"kind": "Group", "group": {"name": name}}


def bootstrap_priority_levels() -> list[dict]:
    return [
        _plc("exempt", 0, 0, None, exempt=True),
        _plc("catch-all", 5, 0, {"type": "Reject"}),
        _plc("system", 30, 33, _queue(64, 6, 50)),
        _plc("node-high", 40, 25, _queue(64, 6, 50)),
        _plc("leader-election", 10, 0, _queue(16, 4, 50)),
        _plc("workload-high", 40, 50, _queue(128, 6, 50)),
        _plc("workload-low", 100, 90, _queue(128, 6, 50)),
        _plc("global-default", 20, 50, _queue(128, 6, 50)),
    ]


def bootstrap_flow_schemas() -> list[dict]:
    ks = {"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}}
    return [
        _fs("exempt", 1, "exempt", [_group("system:masters")], by=None),
        _fs("probes", 2, "exempt", [_group("system:unauthenticated"), _group("system:authenticated")],
            by=None, resource_rules=[],
            non_resource_rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]),
        _fs("system-leader-election", 100, "leader-election",
            [_user("system:kube-controller-manager"), _user("system:kube-scheduler")],
            resource_rules=[{"verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"],
                             "resources": ["leases"], "namespaces": ["*"]}], non_resource_rules=[]),
        _fs("system-node-high", 400, "node-high", [_group("system:nodes")],
            resource_rules=[{"verbs": ["*"], "apiGroups": [""], "resources": ["nodes", "nodes/status"],
                             "clusterScope": True}], non_resource_rules=[]),
        _fs("system-nodes", 500, "system", [_group("system:nodes")]),
        _fs("kube-controller-manager", 800, "workload-high", [_user("system:kube-controller-manager")],
            by="ByNamespace"),
        _fs("kube-scheduler", 800, "workload-high", [_user("system:kube-scheduler")], by="ByNamespace"),
        _fs("kube-system-service-accounts", 900, "workload-high", [ks], by="ByNamespace"),
        _fs("service-accounts", 9000, "workload-low", [_group("system:serviceaccounts")]),
        _fs("global-default", 9900, "global-default",
            [_group("system:unauthenticated"), _group("system:authenticated")]),
        _fs("catch-all", 10000, "catch-all",
            [_group("system:unauthenticated"), _group("system:authenticated")]),
    ]


# --------------------------------------------------------------------------
# Metrics

_METRIC_META = {
    "apiserver_flowcontrol_dispatched_requests_total": ("counter", "Number of requests executed by API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_rejected_requests_total": ("counter", "Number of requests rejected by API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_current_inqueue_requests": ("gauge", "Number of requests currently pending in queues of the API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_current_executing_requests": ("gauge", "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_current_executing_seats": ("gauge", "Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_nominal_limit_seats": ("gauge", "Nominal number of execution seats configured for each priority level"),
    "apiserver_request_total": ("counter", "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code."),
    "apiserver_request_terminations_total": ("counter", "Number of requests which apiserver terminated in self-defense."),
}


@dataclass
class _Series:
    value: float
    rate: float = 0.0  # per second, for counters that grow on their own
    since: float = field(default_factory=time.monotonic)

    def current(self) -> float:
        return self.value + self.rate * (time.monotonic() - self.since)


def _label_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# --------------------------------------------------------------------------
# dump_requests


def _go_time(t: _dt.datetime | None) -> str:
    """time.RFC3339Nano in UTC, as Go prints it (trailing zeros trimmed)."""
    if t is None:
        return "0001-01-01T00:00:00Z"
    t = t.astimezone(_dt.timezone.utc)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{t.microsecond:06d}000".rstrip("0")
    return base + ("." + frac if frac else "") + "Z"


def _tabwriter(lines: Sequence[Sequence[str]], minwidth: int = 8, padding: int = 1) -> str:
    """Go text/tabwriter with cells joined by ",\\t" (all lines have the same column count)."""
    out_cells = [[c + "," for c in line[:-1]] + [line[-1]] if line else [] for line in lines]
    ncols = max((len(l) for l in out_cells), default=0)
    widths = []
    for j in range(ncols - 1):
        w = minwidth
        for l in out_cells:
            if j < len(l) - 1:
                w = max(w, len(l[j]) + padding)
        widths.append(w)
    text = []
    for l in out_cells:
        parts = [l[j].ljust(widths[j]) for j in range(len(l) - 1)] + ([l[-1]] if l else [])
        text.append("".join(parts))
    return "\n".join(text) + ("\n" if text else "")


@dataclass
class InflightRequest:
    """A request the stand-in pretends is queued or executing (one dump row)."""

    user: str
    flow_schema: str
    priority_level: str
    verb: str = "list"
    resource: str = "pods"
    namespace: str = ""
    name: str = ""
    api_group: str = ""
    api_version: str = "v1"
    subresource: str = ""
    queue_index: int = 0
    index_in_queue: int = -1  # -1: executing
    flow_distinguisher: str | None = None  # default: the user (ByUser)
    initial_seats: int = 1
    final_seats: int = 0
    additional_latency: str = "0s"
    arrive_time: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))
    start_time: _dt.datetime | None = None  # None + index_in_queue >= 0: queued

    @property
    def api_path(self) -> str:
        prefix = f"/apis/{self.api_group}/{self.api_version}" if self.api_group else f"/api/{self.api_version}"
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        name = f"/{self.name}" if self.name else ""
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{prefix}{ns}/{self.resource}{name}{sub}"

    def cells(self, details: bool) -> list[str]:
        queued = self.index_in_queue >= 0
        start = None if queued else (self.start_time or self.arrive_time)
        gv = f"{self.api_group}/{self.api_version}" if self.api_group else self.api_version
        cells = [
            self.priority_level, self.flow_schema, str(self.queue_index), str(self.index_in_queue),
            self.user if self.flow_distinguisher is None else self.flow_distinguisher,
            _go_time(self.arrive_time), str(self.initial_seats), str(self.final_seats),
            self.additional_latency, _go_time(start),
        ]
        if details:
            cells += [self.user, self.verb, self.api_path, self.namespace, self.name, gv,
                      self.resource, self.subresource]
        return cells


# --------------------------------------------------------------------------
# The emulator subclass


def _status(code: int, reason: str, message: str, details: dict | None = None) -> aiohttp.web.Response:
    return aiohttp.web.json_response({
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "code": code, "reason": reason, "message": message, "details": details or {},
    }, status=code)


def _now_str() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the apiserver behaviour the bot relies on."""

    standin: "ApiServerStandIn"

    # ---- entry point: non-kmock paths first, then kmock, then PF headers
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        s = self.standin
        if s.delay and not raw.path.startswith(("/readyz", "/livez", "/healthz")):
            await asyncio.sleep(s.delay)
        user, groups = s._identify(raw.headers)
        attrs = s._request_attributes(raw.method, raw.path, dict(raw.query), user, groups)
        fs, pl = s._classify(attrs)
        s.request_log.append(RequestRecord(raw.method, raw.path_qs, user, tuple(groups),
                                           fs.get("metadata", {}).get("name") if fs else None))
        response = await self._serve_special(raw)
        if response is None:
            response = await super().__call__(raw)
        if not response.prepared:
            if fs is not None:
                response.headers["X-Kubernetes-PF-FlowSchema-UID"] = fs["metadata"].get("uid", "")
            if pl is not None:
                response.headers["X-Kubernetes-PF-PriorityLevel-UID"] = pl["metadata"].get("uid", "")
        return response

    async def _serve_special(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse | None:
        s = self.standin
        path = raw.path.rstrip("/") or "/"
        for probe in ("/readyz", "/livez", "/healthz"):
            if path == probe or path.startswith(probe + "/"):
                if raw.method != "GET":
                    return _status(405, "MethodNotAllowed", "method not allowed")
                if s.healthy:
                    body = "ok" if "verbose" not in raw.query else f"[+]ping ok\n[+]etcd ok\n{probe[1:]} check passed\n"
                    return aiohttp.web.Response(text=body, content_type="text/plain")
                body = f"[+]ping ok\n[-]etcd failed: reason withheld\n{probe[1:]} check failed\n"
                return aiohttp.web.Response(text=body, status=500, content_type="text/plain")
        if path == "/metrics" and raw.method == "GET":
            return aiohttp.web.Response(text=s.render_metrics(), content_type="text/plain",
                                        charset="utf-8")
        if path == "/debug/api_priority_and_fairness/dump_requests" and raw.method == "GET":
            details = bool(raw.query.get("includeRequestDetails"))
            return aiohttp.web.Response(text=s.render_dump_requests(details), content_type="text/plain")
        if path == "/version" and raw.method == "GET":
            return aiohttp.web.json_response(s.version_info())
        if _NAMESPACE_PATH.match(path):
            return await self._serve_namespaces(raw, path)
        return None

    async def _serve_namespaces(self, raw: aiohttp.web.BaseRequest, path: str) -> aiohttp.web.StreamResponse:
        s = self.standin
        parts = path.split("/")  # ['', 'api', 'v1', 'namespaces', name?, 'status'?]
        name = parts[4] if len(parts) > 4 else None
        if name is None:
            if raw.method == "GET":
                return aiohttp.web.json_response({
                    "apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "1"},
                    "items": [copy.deepcopy(ns) for ns in s.namespaces.values()]})
            if raw.method == "POST":
                try:
                    body = await raw.json()
                except ValueError:
                    return _status(400, "BadRequest", "the body of the request was not valid JSON")
                ns_name = ((body or {}).get("metadata") or {}).get("name")
                if not ns_name:
                    return _status(422, "Invalid", "Namespace \"\" is invalid: metadata.name: Required value")
                if ns_name in s.namespaces:
                    return _status(409, "AlreadyExists", f'namespaces "{ns_name}" already exists',
                                   {"name": ns_name, "kind": "namespaces"})
                obj = s._decorate({"apiVersion": "v1", "kind": "Namespace", **body})
                obj["status"] = {"phase": "Active"}
                if "dryRun" not in raw.query:
                    s.namespaces[ns_name] = obj
                return aiohttp.web.json_response(obj, status=201)
            return _status(405, "MethodNotAllowed", "method not allowed")
        if name not in s.namespaces:
            return _status(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})
        if raw.method == "GET":
            return aiohttp.web.json_response(s.namespaces[name])
        if raw.method == "DELETE":
            obj = s.namespaces.pop(name)
            # The real apiserver terminates the namespace asynchronously; here it is immediate.
            for key in [k for k in list(self.objects) if k[1] == name]:
                del self.objects[key]
            return aiohttp.web.json_response(obj)
        return _status(405, "MethodNotAllowed", "method not allowed")

    # ---- kmock hooks
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        s = self.standin
        res = request.resource
        if res is not None and res.plural:
            info = s._resource_info(res.group, res.version, res.plural)
            if info is None:
                return _status(404, "NotFound", "the server could not find the requested resource")
            kind, namespaced = info
            if request.action is None and request.method.value not in ("GET",):
                return _status(405, "MethodNotAllowed", f"{request.method.value} is not served by this stand-in")
            if request.action == kmock.action.CREATE:
                data = request.data if isinstance(request.data, dict) else None
                if data is None:
                    return _status(400, "BadRequest", "the body of the request was not valid JSON")
                name = (data.get("metadata") or {}).get("name")
                if not name:
                    return _status(422, "Invalid", f"{kind} is invalid: metadata.name: Required value")
                if namespaced:
                    ns = request.namespace or (data.get("metadata") or {}).get("namespace")
                    if not ns:
                        return _status(400, "BadRequest", "a namespace is required")
                    if ns not in s.namespaces:
                        return _status(404, "NotFound", f'namespaces "{ns}" not found',
                                       {"name": ns, "kind": "namespaces"})
                    data.setdefault("metadata", {})["namespace"] = ns
                key = (res, request.namespace if namespaced else None, name)
                if key in self.objects and not self.objects[key].deleted:
                    return _status(409, "AlreadyExists", f'{res.plural}.{res.group or "core"} "{name}" already exists'
                                   .replace(".core", ""), {"name": name, "group": res.group, "kind": res.plural})
                data.setdefault("apiVersion", f"{res.group}/{res.version}" if res.group else res.version)
                data.setdefault("kind", kind)
                s._decorate(data)
                if "dryRun" in request.params:
                    return aiohttp.web.json_response(self._present(res, data), status=201)
                response = await super()._handle(request)
                if response.status == 200:
                    response.set_status(201)
                return response
        return await super()._handle(request)

    def _present(self, res: Any, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        if res.group == FLOWCONTROL_GROUP and res.plural == "flowschemas":
            self.standin._add_flow_schema_status(obj)
        return obj

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        obj = await super()._serve_fetch(request)
        return self._present(request.resource, obj)

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        res = request.resource
        info = self.standin._resource_info(res.group, res.version, res.plural)
        kind = info[0] if info else ""
        return {
            "apiVersion": f"{res.group}/{res.version}" if res.group else res.version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": "1"},
            "items": [self._present(res, o) for o in result["items"]],
        }


async def _close_server(server: Any) -> None:
    """Stop listening for sure.

    kmock's exit first unwinds its process-wide aiohttp resolver interceptor;
    when several stand-ins stop in another order than they started (the
    sandbox stops the main apiserver while the bypass runs), that raises
    "resolver chain is inconsistent" before the HTTP server is closed, and the
    port would keep accepting connections nobody answers.  Close the client
    and the server ourselves in that case.
    """
    try:
        await server.__aexit__(None, None, None)
    except RuntimeError:
        await server.client.close()
        await server.server.close()


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    user: str
    groups: tuple[str, ...]
    flow_schema: str | None


# --------------------------------------------------------------------------
# The stand-in


class ApiServerStandIn:
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

    # ---- metrics
    def set_metric(self, name: str, labels: Mapping[str, str] | None = None, value: float = 0.0,
                   *, rate: float = 0.0) -> None:
        """Set a series; ``rate`` (per second) makes a counter keep growing on its own."""
        with self._lock:
            self._series.setdefault(name, {})[_label_key(labels or {})] = _Series(float(value), float(rate))

    def add_metric(self, name: str, labels: Mapping[str, str] | None = None, delta: float = 1.0,
                   *, rate: float | None = None) -> float:
        with self._lock:
            key = _label_key(labels or {})
            old = self._series.setdefault(name, {}).get(key)
            current = old.current() if old else 0.0
            new = _Series(current + delta, old.rate if (old and rate is None) else (rate or 0.0))
            self._series[name][key] = new
            return new.value

    def metric_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        with self._lock:
            s = self._series.get(name, {}).get(_label_key(labels or {}))
            return s.current() if s else None

    def clear_metrics(self) -> None:
        with self._lock:
            self._series.clear()

    def set_dispatched(self, flow_schema: str, priority_level: str, value: float, *, rate: float = 0.0) -> None:
        self.set_metric("apiserver_flowcontrol_dispatched_requests_total",
                        {"flow_schema": flow_schema, "priority_level": priority_level}, value, rate=rate)

    def set_rejected(self, flow_schema: str, priority_level: str, reason: str, value: float,
                     *, rate: float = 0.0) -> None:
        self.set_metric("apiserver_flowcontrol_rejected_requests_total",
                        {"flow_schema": flow_schema, "priority_level": priority_level, "reason": reason},
                        value, rate=rate)

    def set_inqueue(self, flow_schema: str, priority_level: str, value: float) -> None:
        self.set_metric("apiserver_flowcontrol_current_inqueue_requests",
                        {"flow_schema": flow_schema, "priority_level": priority_level}, value)

    def set_executing_seats(self, flow_schema: str, priority_level: str, value: float) -> None:
        self.set_metric("apiserver_flowcontrol_current_executing_seats",
                        {"flow_schema": flow_schema, "priority_level": priority_level}, value)

    def set_nominal_limit(self, priority_level: str, value: float) -> None:
        self.set_metric("apiserver_flowcontrol_nominal_limit_seats", {"priority_level": priority_level}, value)

    def set_request_total(self, verb: str, resource: str, code: str | int, value: float, *,
                          rate: float = 0.0, group: str = "", version: str = "v1") -> None:
        self.set_metric("apiserver_request_total",
                        {"verb": verb.upper(), "resource": resource, "code": str(code), "group": group,
                         "version": version, "scope": "cluster", "component": "apiserver",
                         "dry_run": "", "subresource": ""}, value, rate=rate)

    def set_terminations(self, value: float, *, verb: str = "LIST", resource: str = "pods",
                         code: str | int = 429, rate: float = 0.0) -> None:
        self.set_metric("apiserver_request_terminations_total",
                        {"verb": verb, "resource": resource, "code": str(code), "group": "",
                         "version": "v1", "scope": "cluster", "component": "apiserver", "subresource": ""},
                        value, rate=rate)

    def _nominal_limits(self) -> dict[str, float]:
        pls = self._in_loop(lambda: self._live("prioritylevelconfigurations"))
        shares = {}
        for p in pls:
            spec = p.get("spec") or {}
            if spec.get("type") == "Limited":
                ncs = (spec.get("limited") or {}).get("nominalConcurrencyShares")
                shares[p["metadata"]["name"]] = 30 if ncs is None else int(ncs)
            else:
                shares[p["metadata"]["name"]] = 0
        total = sum(shares.values()) or 1
        return {name: math.ceil(SERVER_CONCURRENCY_LIMIT * ncs / total) for name, ncs in shares.items()}

    def render_metrics(self) -> str:
        with self._lock:
            series = {name: dict(s) for name, s in self._series.items()}
        # nominal_limit_seats follows the stored PLCs unless a value was set by hand
        computed = self._nominal_limits() if self._loop is not None else {}
        nominal = series.setdefault("apiserver_flowcontrol_nominal_limit_seats", {})
        for pl, seats in computed.items():
            nominal.setdefault(_label_key({"priority_level": pl}), _Series(float(seats)))
        lines: list[str] = []
        for name in sorted(series):
            kind, help_text = _METRIC_META.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for key, s in sorted(series[name].items()):
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                lines.append(f"{name}{{{labels}}} {_fmt(s.current())}" if labels else f"{name} {_fmt(s.current())}")
        return "\n".join(lines) + "\n"

    # ---- APF dump
    def add_inflight(self, *requests: InflightRequest) -> None:
        with self._lock:
            self._inflight.extend(requests)

    def set_inflight(self, requests: Iterable[InflightRequest]) -> None:
        with self._lock:
            self._inflight = list(requests)

    def clear_inflight(self) -> None:
        self.set_inflight([])

    def render_dump_requests(self, details: bool = True) -> str:
        header = list(DUMP_REQUESTS_COLUMNS) + (list(DUMP_REQUESTS_DETAIL_COLUMNS) if details else [])
        with self._lock:
            rows = [r.cells(details) for r in self._inflight]
        return _tabwriter([header] + rows)

    # ---- scenario
    def flood(
        self,
        user: str,
        groups: Sequence[str] = (),
        *,
        requests: int = 40,
        queued: int | None = None,
        rate: float = 200.0,
        rejected_rate: float = 20.0,
        verb: str = "list",
        resource: str = "pods",
        namespace: str = "",
    ) -> dict:
        """Simulate one client flooding the apiserver.

        The client's requests are classified like real ones (its current
        FlowSchema and priority level); that flow's dispatched/rejected
        counters start growing at ``rate``/``rejected_rate`` per second, its
        in-queue and executing gauges rise, ``apiserver_request_total`` for
        the verb/resource grows (200s and 429s), and the dump gets
        ``requests`` rows for the user (``queued`` of them waiting).
        Returns ``{"flow_schema", "priority_level", "user"}``.
        """
        fs = self.classify(user, groups, verb=verb, resource=resource, namespace=namespace)
        fs_name = fs["metadata"]["name"] if fs else "catch-all"
        pl_name = fs["spec"]["priorityLevelConfiguration"]["name"] if fs else "catch-all"
        by = ((fs or {}).get("spec", {}).get("distinguisherMethod") or {}).get("type")
        distinguisher = user if by == "ByUser" else (namespace if by == "ByNamespace" else "")
        queued = requests // 2 if queued is None else queued
        labels = {"flow_schema": fs_name, "priority_level": pl_name}
        self.add_metric("apiserver_flowcontrol_dispatched_requests_total", labels, requests, rate=rate)
        self.add_metric("apiserver_flowcontrol_rejected_requests_total", {**labels, "reason": "queue-full"},
                        0, rate=rejected_rate)
        self.add_metric("apiserver_flowcontrol_current_inqueue_requests", labels, queued)
        self.add_metric("apiserver_flowcontrol_current_executing_seats", labels, requests - queued)
        self.add_metric("apiserver_flowcontrol_current_executing_requests", labels, requests - queued)
        req_labels = {"verb": verb.upper(), "resource": resource, "group": "", "version": "v1",
                      "scope": "namespace" if namespace else "cluster", "component": "apiserver",
                      "dry_run": "", "subresource": ""}
        self.add_metric("apiserver_request_total", {**req_labels, "code": "200"}, requests, rate=rate)
        self.add_metric("apiserver_request_total", {**req_labels, "code": "429"}, 0, rate=rejected_rate)
        self.add_metric("apiserver_request_terminations_total", {**req_labels, "code": "429"}, 0,
                        rate=rejected_rate)
        now = _dt.datetime.now(_dt.timezone.utc)
        rows = []
        for i in range(requests):
            waiting = i < queued
            rows.append(InflightRequest(
                user=user, flow_schema=fs_name, priority_level=pl_name, verb=verb, resource=resource,
                namespace=namespace, queue_index=0 if waiting else 0, index_in_queue=i if waiting else -1,
                flow_distinguisher=distinguisher, arrive_time=now - _dt.timedelta(milliseconds=10 * i),
                start_time=None if waiting else now))
        self.add_inflight(*rows)
        return {"flow_schema": fs_name, "priority_level": pl_name, "user": user}
